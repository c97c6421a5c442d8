"""Settings: one object read from GRIDGOV_* environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_PATH = Path("var") / "gridgov.db"


class Settings(BaseSettings):
    """Every setting has a safe default so `gridgov demo` runs with none set."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", env_file=None, extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DB_PATH}",
        description="SQLAlchemy URL: sqlite:///path (default var/gridgov.db) or "
        "postgresql+psycopg://user@host/db",
    )
    host: str = Field(default="127.0.0.1", description="Address `gridgov serve` binds to")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `gridgov serve` listens on")
    tile_url: str = Field(
        default="",
        description="Leaflet tile-layer URL template for the map background; empty = none "
        "(works on a closed network)",
    )
    tile_attribution: str = Field(default="", description="Attribution shown for the tile layer")
    session_hours: float = Field(default=8.0, gt=0, description="Lifetime of a page login")
    token_hours: float = Field(default=12.0, gt=0, description="Lifetime of an API bearer token")
    idle_minutes: float = Field(
        default=30.0, gt=0, description="A page session unused this long expires (GB/T 22239)"
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins in a row before the account is locked"
    )
    lockout_minutes: float = Field(default=15.0, gt=0, description="How long a lockout lasts")
    cookie_secure: bool = Field(
        default=False, description="Send the session cookie only over HTTPS (set true behind TLS)"
    )
    divisions_file: Path | None = Field(
        default=None,
        description="Division code list (CSV code,name,level,parent_code); empty = shipped Ningbo 2023",
    )
    log_level: str = Field(default="info", description="Server log level")
    office_hours: str = Field(
        default="08:30-12:00,13:30-17:30",
        description="Office hours of a working day (Asia/Shanghai), for deadlines in working hours",
    )
    calendar_file: Path | None = Field(
        default=None,
        description="TOML of holidays and make-up workdays for years chinese-calendar lacks; "
        "empty = shipped table",
    )
    catalog_file: Path | None = Field(
        default=None,
        description="Event catalog (TOML: categories, deadlines, routing); empty = shipped 33+1",
    )
    assessment_file: Path | None = Field(
        default=None,
        description="Assessment config (TOML: indicators, weights, score mappings); empty = shipped "
        "DOMAIN.md §7 defaults",
    )
    media_dir: Path = Field(
        default=Path("var") / "media",
        description="Where photos are stored, content-addressed (originals, public copies, thumbnails)",
    )
    ingest_dir: Path = Field(
        default=Path("var") / "ingest",
        description="Where imports stage department files and write their quarantine reports",
    )
    ingest_chunk: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Rows an import standardises and commits at a time (its resume granularity)",
    )
    ingest_jobs: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Files of a folder imported at once (threads; each commits on its own)",
    )
    ingest_workers: int = Field(
        default=1,
        ge=0,
        le=64,
        description="Processes that standardise imported rows beside the one that writes them; "
        "1 = none (best on two cores), 0 = one per CPU",
    )
    parse_workers: int = Field(
        default=-1,
        ge=-1,
        le=64,
        description="Processes that parse addresses beside the one resolving (the parser is "
        "Python; millions of addresses at city scale); -1 = one per CPU but one, 0 = none",
    )
    sources_dir: Path | None = Field(
        default=None,
        description="Folder of department mapping files (TOML); empty = the shipped 11 departments",
    )
    sqlite_cache_mib: int = Field(
        default=256,
        ge=2,
        le=65_536,
        description="SQLite page cache per connection, MiB (SQLite's own default is 2); it grows "
        "only as pages are used, and large imports need it",
    )
    max_upload_mb: float = Field(default=10.0, gt=0, description="Largest photo accepted, in MiB")
    threads: int = Field(
        default=16,
        ge=1,
        le=200,
        description="Threads per server process for request handlers (they mostly wait on the "
        "database; more threads than this only add lock contention) and the database pool size",
    )
    field_track_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days patrol tracks (sensitive location data) are kept; daily figures stay",
    )
    sweep_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often `gridgov serve` runs the deadline sweep (warnings, escalation); 0 = never",
    )

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError(
                "GRIDGOV_DATABASE_URL 只支持 sqlite:///路径 或 postgresql+psycopg://用户@主机/库名"
            )
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we install; plain postgresql:// would look for psycopg2.
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value
