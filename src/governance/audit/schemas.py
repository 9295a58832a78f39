"""Audit log payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor: str = Field(
        description="Who acted: `key:<id>:<name>` (followed by "
        "` for sf:<user Id>` when an integration key acted for a Salesforce user), or `cli`."
    )
    actor_role: str
    on_behalf_of: str | None
    action: str
    entity_type: str
    entity_id: str
    before: Any | None
    after: Any | None
    prev_hash: str = Field(description="The previous entry's `entry_hash`.")
    entry_hash: str = Field(
        description="sha256 over `prev_hash` and this entry's content: the hash chain "
        "`governance audit verify` checks. Keep a recent one elsewhere to anchor the chain."
    )


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")
