"""Open311 GeoReport v2: the public reporting API over the event service."""
