"""API key payloads."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from governance.engine.document import GroupName


class Role(StrEnum):
    admin = "admin"
    leadership = "leadership"
    approver = "approver"
    rep = "rep"
    integration = "integration"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    role: Role
    groups: Annotated[list[GroupName], Field(max_length=50)] = Field(
        default=[], description="Stakeholder groups an approver key decides and signs off for."
    )


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    groups: list[str]
    prefix: str = Field(description="The first characters of the key, to recognise it by.")
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="The API key. It is shown this once and never again.")


class ApiKeyPage(BaseModel):
    items: list[ApiKeyRead]
