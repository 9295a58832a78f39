"""Rep profile payloads: who a rep is, so analytics can group by team, region and style."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# The value deals carry in `owner_rep`: a Salesforce user Id, an email or a handle.
# As deals name reps (`owner_rep`, up to 100 characters): any text but slashes and control
# characters, not starting or ending with a space.
REP_PATTERN = r"^[^\s/\x00-\x1f\x7f](?:[^/\x00-\x1f\x7f]{0,98}[^\s/\x00-\x1f\x7f])?$"

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class Style(StrEnum):
    """Negotiation style, so coaching can be aimed at how a rep tends to negotiate."""

    closer = "closer"
    diplomat = "diplomat"
    strategist = "strategist"
    game_changer = "game_changer"


class RepWrite(BaseModel):
    """A whole profile: PUT replaces every field (left out means none)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    team: ShortText | None = None
    region: ShortText | None = None
    style: Style


class RepRead(BaseModel):
    rep: str = Field(description="The name deals carry in `owner_rep`.")
    name: str | None
    team: str | None
    region: str | None
    style: Style
    version: int
    created_at: datetime
    updated_at: datetime


class RepPage(BaseModel):
    items: list[RepRead]
    next_cursor: str | None
