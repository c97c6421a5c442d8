"""Identifiers, address standardisation, entity resolution and golden records."""
