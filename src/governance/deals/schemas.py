"""Deal and check payloads, including the check result the Salesforce page renders."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from governance.deals.models import DealStatus
from governance.engine.document import KEY_PATTERN, PlaybookKey, TermKey
from governance.engine.results import Status, Verdict
from governance.figures import Ratio
from governance.number_text import number_from_text, text_checked
from governance.types import IsoDate
from governance.types import salesforce_id_18 as salesforce_id_18  # where callers import it

ExternalId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$"),
]
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
ShortText = Annotated[str, StringConstraints(max_length=100)]
StrictText = Annotated[str, StringConstraints(max_length=100, strict=True)]
CheckedTermInput = Annotated[
    StrictBool | StrictInt | FiniteFloat | StrictText | None,
    Field(
        description='Numbers as JSON numbers or decimal strings ("18.5"), options as strings, '
        "flags as booleans; null means not stated.",
    ),
]
# Text that reads as a number must be written as one ("1_000", " 5 ", "NaN" are refused), so a
# value is never stored as text to be read as a number later (see `governance.number_text`).
TermInput = Annotated[CheckedTermInput, AfterValidator(text_checked)]
ExtraAttribute = Annotated[
    StrictBool
    | StrictInt
    | FiniteFloat
    | Annotated[str, StringConstraints(max_length=200, strict=True)],
    AfterValidator(text_checked),
]
TermMap = Annotated[dict[TermKey, TermInput], Field(max_length=200)]
# A check stores nothing and the engine reads every term it checks strictly (numbers by
# `number_text.parse_decimal`, options and flags exactly), naming the term: the hot path skips
# the per-value check.
CheckedTermMap = Annotated[dict[TermKey, CheckedTermInput], Field(max_length=200)]
# `Amount` with `ge=0` among its own constraints (placed after its text reader, the bound would
# be checked apart and drop out of the JSON schema).
NonNegativeAmount = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False, max_digits=24, decimal_places=8),
    BeforeValidator(number_from_text),
]


class ValuePosition(StrEnum):
    strong = "strong"
    parity = "parity"
    weak = "weak"


class DealAttributes(BaseModel):
    """What a deal is, beyond its terms: used for scope resolution and rule conditions.

    Other attributes (lower_snake_case names) are allowed and usable in scopes and rules.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, ExtraAttribute] = Field(init=False)

    region: ShortText | None = None
    segment: ShortText | None = None
    product_line: ShortText | None = None
    team: ShortText | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    amount: NonNegativeAmount | None = None
    stage: ShortText | None = None
    close_date: IsoDate | None = None
    owner_rep: ShortText | None = None
    value_position: ValuePosition | None = None

    @model_validator(mode="after")
    def _extra_names(self) -> DealAttributes:
        extra = self.__pydantic_extra__ or {}
        if len(extra) > 50:
            raise ValueError("at most 50 additional attributes")
        for name in extra:
            if not re.match(KEY_PATTERN, name):
                raise ValueError(f"attribute name {name!r} must match {KEY_PATTERN}")
        return self


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    playbook: PlaybookKey | None = Field(
        default=None, description="Check against this playbook; by default the scope decides."
    )
    attributes: DealAttributes = Field(default_factory=DealAttributes)
    terms: CheckedTermMap = {}


class PlaybookRef(BaseModel):
    key: str
    version: int
    name: str


class BandRead(BaseModel):
    """The band after rules: numbers have low/high/walk_away, choices allowed, flags preferred."""

    low: Decimal | None = None
    high: Decimal | None = None
    walk_away: Decimal | None = None
    allowed: list[str] | None = None
    preferred: bool | None = None


class TierRead(BaseModel):
    """One step of a term's escalation ladder, after the rules that fired on the term."""

    limit: Decimal | None = Field(
        default=None,
        description="Numbers: how far this tier reaches, in the term's unit (moved with the band "
        "edge by rules).",
    )
    options: list[str] | None = Field(default=None, description="Choices: the options it covers.")
    approver: str = Field(description="The group that approves a value in this tier.")


class TermCheck(BaseModel):
    key: str
    label: str
    kind: Literal["number", "choice", "flag"]
    unit: str | None
    owner: str
    priority: int
    value: str | bool | None = Field(description="Numbers come back as decimal strings.")
    status: Status
    variance: Decimal = Field(description="Distance past the band edge (steps for choices/flags).")
    variance_ratio: Ratio = Field(description="0 at the band edge, 1 at walk-away, >1 beyond.")
    tier: int | None
    approvers: list[str] = Field(description="The approval chain, in order.")
    band: BandRead
    rules: list[str] = Field(description="Rules that fired and changed this term.")
    tiers: list[TierRead] = Field(
        default_factory=list,
        description="The escalation ladder beyond the band, in order: a value up to tier 1's "
        "limit needs tier 1's approver, and so on up to the walk-away. Checks stored before "
        "this field existed read back without it.",
    )


class StepRead(BaseModel):
    group: str
    step: int
    terms: list[str]


class AskRead(BaseModel):
    term: str
    op: str
    value: str | bool | list[str]


class TradeRead(BaseModel):
    term: str
    rule: str
    asks: list[AskRead] = Field(description="What to ask the customer for in return.")
    band_edge_before: Decimal | None
    band_edge_after: Decimal | None
    status_after: Status
    variance_before: Decimal
    variance_after: Decimal
    variance_removed: Decimal
    resolves: bool = Field(description="True when the trade brings the term back inside its band.")


class CheckResponse(BaseModel):
    playbook: PlaybookRef
    verdict: Verdict
    variance_score: Ratio
    terms: list[TermCheck]
    steps: list[StepRead] = Field(description="Approval requests the deal would need.")
    rules_fired: list[str]
    trades: list[TradeRead] = Field(description="Suggested trades per exception, best first.")


class DealUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    attributes: DealAttributes = Field(default_factory=DealAttributes)
    terms: TermMap = {}
    playbook: PlaybookKey | None = Field(
        default=None, description="Pin the deal to a playbook instead of resolving by scope."
    )


class DealUpdate(BaseModel):
    """Partial update: attributes given replace those attributes; terms merge key by key."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    attributes: DealAttributes | None = None
    terms: TermMap | None = None
    playbook: PlaybookKey | None = None


class LastCheck(BaseModel):
    verdict: Verdict
    variance_score: Ratio
    checked_at: datetime


class DealRead(BaseModel):
    external_id: str
    name: str | None
    attributes: DealAttributes
    terms: dict[str, bool | int | float | str]
    playbook: str | None
    status: DealStatus
    last_check: LastCheck | None
    created_at: datetime
    updated_at: datetime


class DealPage(BaseModel):
    items: list[DealRead]
    next_cursor: str | None


class OpenRequestRef(BaseModel):
    """An approval request under way, with the playbook version it is pinned to."""

    id: int
    group: str
    step: int
    status: str
    playbook: str
    playbook_version: int


class DealCheckRead(BaseModel):
    id: int
    external_id: str
    checked_at: datetime
    checked_by: str
    result: CheckResponse
    open_requests: list[OpenRequestRef] | None = Field(
        default=None,
        description="After a stored check: the deal's open approval requests and the playbook "
        "version each uses (approvals under way keep the version they started with).",
    )


class DealCheckPage(BaseModel):
    items: list[DealCheckRead]
    next_cursor: str | None


class VerdictMove(BaseModel):
    before: Verdict
    after: Verdict
    deals: int


class TermImpactRead(BaseModel):
    term: str
    label: str
    start: int = Field(description="Deals where the term newly needs approval (or is blocked).")
    stop: int = Field(description="Deals where the term no longer needs approval.")


class GroupImpactRead(BaseModel):
    group: str
    before: int = Field(description="Deals this approver group is asked to approve now.")
    after: int = Field(description="Deals it would be asked to approve under the version.")


class ImpactRead(BaseModel):
    """A version's effect on recent deals: each deal's latest terms re-checked under the version
    and under its baseline (for a draft, the published version), nothing stored."""

    key: str
    version: int
    baseline: int = Field(description="The version it is measured against.")
    days: int
    limit: int
    since: datetime
    deals: int = Field(description="Deals last checked against this playbook since `since`.")
    skipped: int = Field(description="Deals whose terms no longer fit one of the versions.")
    changed: int = Field(description="Deals whose verdict would change.")
    verdicts_before: dict[str, int]
    verdicts_after: dict[str, int]
    moves: list[VerdictMove]
    terms: list[TermImpactRead]
    groups: list[GroupImpactRead]
