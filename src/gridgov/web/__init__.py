"""Web layer: request dependencies, templates and static files."""
