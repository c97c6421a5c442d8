"""Import every domain's models so Base.metadata is complete (for Alembic and the sync test)."""

from gridgov.accounts import models as accounts_models
from gridgov.analytics.rollups import models as rollups_models
from gridgov.analytics.warnings import models as warnings_models
from gridgov.db.base import Base
from gridgov.events import models as events_models
from gridgov.field import models as field_models
from gridgov.geo import models as geo_models
from gridgov.ingest import models as ingest_models
from gridgov.registry import models as registry_models

__all__ = [
    "Base",
    "accounts_models",
    "events_models",
    "field_models",
    "geo_models",
    "ingest_models",
    "registry_models",
    "rollups_models",
    "warnings_models",
]
