"""Storage: engine, sessions, portable types and the one Alembic migration tree."""
