"""Command line: Typer root and one module per command group."""
