"""Service settings: one object, read from GOVERNANCE_* environment variables."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SalesforceSettings(BaseModel):
    """The org: where to log in, how, and how hard to push it."""

    login_url: str = Field(
        default="https://login.salesforce.com",
        description="https://login.salesforce.com, https://test.salesforce.com (sandboxes), a "
        "My Domain URL, or an http:// URL (http://127.0.0.1:PORT) for a fake org.",
    )
    api_version: str | None = Field(
        default=None,
        pattern=r"^\d{2,3}\.0$",
        description="The REST API version to call (e.g. 62.0). Unset: the newest the org lists "
        "at /services/data/, up to 66.0 (59.0 if it lists none).",
    )
    auth: Literal["jwt", "client_credentials", "password"] = Field(
        default="jwt",
        description="The OAuth 2.0 flow, through a connected app. jwt (preferred): consumer_key "
        "+ username + private_key_file (the app holds the certificate). client_credentials: "
        "consumer_key + consumer_secret, with a My Domain login URL (the app names its run-as "
        "user). password (least preferred; it sends the user's password): consumer_key + "
        "consumer_secret + username + password (+ security_token, appended to the password).",
    )
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    private_key_file: Path | None = None
    jwt_audience: str | None = Field(
        default=None,
        description="The JWT's aud: https://login.salesforce.com (the default), "
        "https://test.salesforce.com (the default for sandbox login URLs) or an Experience "
        "Cloud site URL.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per HTTP call.")
    mapping_file: Path | None = Field(
        default=None,
        description="The YAML mapping (see src/governance/salesforce/mapping.example.yaml).",
    )
    pull_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often `governance worker` pulls changes."
    )
    overlap_seconds: int = Field(
        default=300,
        ge=0,
        description="The pull re-reads this window before its watermark, and never moves the "
        "watermark past its own start minus this.",
    )
    max_attempts: int = Field(
        default=8, ge=1, description="Push attempts per opportunity before it is parked as dead."
    )
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_cap_seconds: float = Field(default=3600.0, gt=0)
    quota_stop_share: Decimal = Field(
        default=Decimal("0.8"),
        gt=0,
        le=1,
        description="Stop calling the org once this share of its daily API quota is used.",
    )
    pause_seconds: int = Field(
        default=900, ge=1, description="How long REQUEST_LIMIT_EXCEEDED pauses the sync."
    )
    bulk_threshold: int = Field(
        default=10_000,
        ge=0,
        description="A first load, or a backfill (a watermark over a day old), of more "
        "opportunities than this is read through a Bulk API 2.0 query job instead of REST "
        "query pages. 0: never.",
    )
    bulk_poll_seconds: float = Field(
        default=5.0, gt=0, description="How often the pull polls a Bulk API 2.0 query job."
    )
    bulk_page_records: int = Field(
        default=2000,
        ge=1,
        le=50_000,
        description="Records per set of Bulk results (maxRecords), each applied and "
        "checkpointed in one transaction.",
    )
    push_concurrency: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Collections calls (200 records each) the push runs at once. Salesforce "
        "allows several concurrent API calls; each counts against the daily quota as usual.",
    )
    organization_id: str | None = Field(
        default=None, description="The org's Id; Outbound Messages from any other are refused."
    )
    outbound_message_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret Outbound Messages carry (as ?secret= on the endpoint URL).",
    )

    @staticmethod
    def secret(value: SecretStr | None) -> str | None:
        return None if value is None else value.get_secret_value()


class ServerSettings(BaseModel):
    """How `governance serve` treats connections: the limits a slow or greedy client meets."""

    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request line and its headers must arrive within this long of the "
        "connection opening (or of its first byte, on a kept-alive connection); else 408 and "
        "the connection is closed.",
    )
    body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A request's whole body must arrive within this long of its headers; else "
        "408 and the connection is closed.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="The request line and headers together; larger gets 431 and a close.",
    )
    keep_alive_seconds: int = Field(
        default=5, ge=1, description="An idle kept-alive connection is closed after this long."
    )
    limit_concurrency: int = Field(
        default=1000,
        ge=1,
        description="Open connections or requests in flight per process beyond which a new "
        "request is answered 503 at once.",
    )
    graceful_shutdown_seconds: int = Field(
        default=30,
        ge=0,
        description="On SIGTERM or SIGINT, requests in flight get this long to finish.",
    )
    proxy_headers: bool = Field(
        default=True,
        description="Take the client address and scheme from X-Forwarded-For and "
        "X-Forwarded-Proto, but only from the addresses in forwarded_allow_ips.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Comma-separated addresses or networks of the reverse proxies whose "
        "forwarded headers are trusted; `*` trusts anyone who can reach the port.",
    )


class MetricsSettings(BaseModel):
    """Who may read `/metrics`, and where it is served."""

    enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    public: bool = Field(
        default=False,
        description="Let anyone who reaches /metrics read it, without a key (a scraper inside "
        "the network). Otherwise it takes an admin key.",
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port instead of the API's (no key asked there: "
        "keep the port inside the network). `governance serve` starts it.",
    )
    host: str = Field(default="127.0.0.1", description="Bind address of the metrics port.")
    cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a process reuses the figures it read from the database, so "
        "several scrapers (or a tight interval) cost one set of queries.",
    )


class TracingSettings(BaseModel):
    """OpenTelemetry traces (needs `pip install governance[otel]`); off by default."""

    enabled: bool = Field(default=False, description="Trace requests and database calls.")
    endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (http://collector:4318/v1/traces). Unset: the "
        "exporter's own settings (OTEL_EXPORTER_OTLP_*) apply.",
    )
    service_name: str = Field(default="deal-governance", max_length=100)
    sample_ratio: float = Field(default=1.0, ge=0, le=1, description="Share of traces kept.")


class Settings(BaseSettings):
    """Everything configurable about the service. Nested subsystems use `__` in env names."""

    model_config = SettingsConfigDict(
        env_prefix="GOVERNANCE_", env_nested_delimiter="__", extra="ignore"
    )

    environment: Literal["development", "production"] = Field(
        default="production",
        description="`development` (what `make run` sets) lets webhooks use plain http; "
        "everywhere else they must use https.",
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
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="The largest request body accepted (413 beyond it), counted as it arrives.",
    )
    max_import_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="The largest body `POST /v1/playbooks/import` accepts (a whole document; "
        "the demo playbook is 6 KB, and YAML parses at several seconds of CPU per MiB).",
    )
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
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Hosts webhooks may point at although they are not public addresses "
        "(loopback, private networks): names, addresses or networks, comma-separated "
        "(`hooks.internal,10.20.0.0/16`). Nothing else non-public is ever posted to.",
    )
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    worker_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often `governance worker` looks for due work."
    )
    log_level: str = "INFO"
    log_format: Literal["json", "console"] | None = Field(
        default=None,
        description="`json` (one object per line) or `console` (readable lines). Unset: "
        "console in development, JSON everywhere else.",
    )
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    # The web console (governance.web): browser sessions and the headers its pages carry.
    session_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Signs the console's session cookies (32+ characters). When unset, one is "
        "generated on first use and kept in the database, so restarts and every worker agree.",
    )
    session_hours: float = Field(
        default=8.0, gt=0, le=24 * 30, description="How long a console sign-in lasts."
    )
    session_cookie_secure: bool | None = Field(
        default=None,
        description="Mark the session cookie Secure. Unset: when the request came over https "
        "or public_url is https.",
    )
    frame_ancestors: str = Field(
        default="'self'",
        max_length=2000,
        # Sources only: no `;` or line breaks that would add other directives or headers.
        pattern=r"^[A-Za-z0-9 :/*.'_-]+$",
        description="Who may embed console pages in a frame (the CSP frame-ancestors source "
        "list), e.g. \"'self' https://acme.lightning.force.com\".",
    )

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
