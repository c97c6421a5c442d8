"""Importing gridgov asks Polars' allocator to give freed pages back at once, unless the operator chose."""

from __future__ import annotations

import os
import subprocess
import sys

SHOW = "import gridgov, os; print(os.environ['_RJEM_MALLOC_CONF'])"


def _child(env: dict[str, str]) -> str:
    out = subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_default_gives_pages_back() -> None:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    assert _child(env) == "dirty_decay_ms:0,muzzy_decay_ms:0"


def test_operator_value_wins() -> None:
    env = {**os.environ, "_RJEM_MALLOC_CONF": "dirty_decay_ms:5000"}
    assert _child(env) == "dirty_decay_ms:5000"
