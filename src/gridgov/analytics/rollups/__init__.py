"""Daily rollups of events and base numbers, maintained incrementally and rebuilt from source."""
