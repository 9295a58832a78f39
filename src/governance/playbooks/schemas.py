"""Playbook payloads. The document itself is `governance.engine.document.PlaybookDocument`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from governance.engine.document import GroupName, PlaybookDocument
from governance.playbooks.catalog import SignoffReason
from governance.playbooks.models import VersionStatus


class SignoffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: GroupName = Field(description="The owner group signing off the terms it owns.")
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class SignoffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    group: str
    signed_by: str
    admin_override: bool
    note: str | None
    created_at: datetime
    current: bool = Field(description="False when the draft changed after this sign-off.")


class TermSignoffRead(BaseModel):
    term: str
    reason: SignoffReason = Field(
        description="`new_term` (its owner enters it in the term catalog), `defined` (this "
        "playbook newly defines a catalog term), `changed`, `owner_change` (the catalog's "
        "owner and the new owner sign) or `removed`."
    )
    groups: list[str] = Field(description="Who must sign off for this term.")
    missing: list[str] = Field(description="Of those, who has not signed the current draft.")


class VersionSummary(BaseModel):
    number: int
    status: VersionStatus
    created_at: datetime
    created_by: str
    published_at: datetime | None
    published_by: str | None


class VersionRead(VersionSummary):
    key: str
    etag: str = Field(description="Send back as If-Match to update this draft safely.")
    document: PlaybookDocument
    changed_terms: list[str] = Field(
        description="Terms that need sign-off: their definition differs from the published "
        "version (added, removed or changed, including by a rule that targets them), or their "
        "owner differs from the term catalog's."
    )
    required_signoffs: list[str] = Field(
        description="Groups that must sign off to publish: the term catalog's owners of the "
        "changed terms (and a new owner taking a term over)."
    )
    missing_signoffs: list[str]
    term_signoffs: list[TermSignoffRead] = Field(description="Who must sign off, term by term.")
    signoffs: list[SignoffRead]


class PlaybookRead(BaseModel):
    key: str
    name: str
    published_version: int | None
    draft_version: int | None
    scope: dict[str, str] = Field(description="Scope of the published version (else the latest).")
    versions: list[VersionSummary]
    created_at: datetime
    updated_at: datetime


class PlaybookList(BaseModel):
    items: list[PlaybookRead]


class NewVersion(BaseModel):
    """Start a new draft: from a whole document, or (empty body) a copy of the latest version."""

    model_config = ConfigDict(extra="forbid")

    document: PlaybookDocument | None = None


class ImportResult(BaseModel):
    key: str
    version: int
    status: VersionStatus
    outcome: str = Field(description="`created`, `updated`, `unchanged` or `published`.")


class CatalogTermRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    label: str | None
    kind: Literal["number", "choice", "flag"]
    owner: str = Field(description="The group that owns the term in every playbook.")
    source: str = Field(
        description="The published playbook version (`key/number`) that last set its owner or "
        "label."
    )
    created_at: datetime
    updated_at: datetime


class CatalogPage(BaseModel):
    items: list[CatalogTermRead]


JsonDocument = dict[str, Any]
