"""Service settings: one object, read from GOVERNANCE_* environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable about the service. Nested subsystems use `__` in env names."""

    model_config = SettingsConfigDict(
        env_prefix="GOVERNANCE_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///./governance.db",
        description="SQLAlchemy URL. SQLite for a first run, postgresql+psycopg://… in production.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL used in links the service emits."
    )
    bootstrap_admin_key: SecretStr | None = Field(
        default=None,
        description="When no API key exists at start-up, this value becomes the admin key.",
    )
    playbook_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a replica trusts its cached view of which versions are published.",
    )
    api_key_cache_seconds: float = Field(
        default=30.0, ge=0, description="How long a verified API key is trusted without a lookup."
    )
    db_pool_size: int = Field(default=10, ge=1)
    approval_sla_hours: int = Field(
        default=24,
        ge=1,
        le=8760,
        description="Hours a group has to decide a request, unless its group settings say otherwise.",
    )
    escalation_group: str | None = Field(
        default=None,
        description="Where overdue requests go when their term has no further tier to escalate to.",
    )
    notify_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Webhook posts tried this often before they are parked as dead.",
    )
    notify_timeout_seconds: float = Field(default=5.0, gt=0, description="Per webhook post.")
    worker_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often `governance worker` looks for due work."
    )
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
