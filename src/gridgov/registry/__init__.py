"""The base data center: standard addresses, buildings, rooms, persons, organizations, tags."""
