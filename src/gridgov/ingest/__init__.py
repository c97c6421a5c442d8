"""Department sources: mappings, reading, staging, validation, quarantine and loading."""
