"""Domain errors with stable codes; one handler in app.py maps them to HTTP."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    status_code = 400

    def __init__(self, msg: str, *, code: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        if code is not None:
            self.code = code


class NotFound(DomainError):
    code = "not_found"
    status_code = 404


class Unauthorized(DomainError):
    code = "unauthorized"
    status_code = 401


class Forbidden(DomainError):
    code = "forbidden"
    status_code = 403


class Conflict(DomainError):
    code = "conflict"
    status_code = 409


class InvalidTransition(DomainError):
    code = "invalid_transition"
    status_code = 409


class Rejected(DomainError):
    code = "rejected"
    status_code = 422


class Unavailable(DomainError):
    code = "unavailable"
    status_code = 503
