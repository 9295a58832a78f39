"""Payloads for outcomes, preparations and after-action reviews."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from governance.approvals.schemas import PlaybookVersionRef
from governance.deals.schemas import TermInput, TermMap
from governance.engine.document import TermKey
from governance.engine.results import Status, Verdict
from governance.figures import Money, Ratio
from governance.types import IsoDate

Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text500 = Annotated[str, StringConstraints(min_length=1, max_length=500)]
WireValue = str | bool | None
Score = Annotated[StrictInt, Field(ge=1, le=7)]


class OutcomeTradeInput(BaseModel):
    """A give and what was got for it."""

    model_config = ConfigDict(extra="forbid")

    gave: TermKey = Field(description="A stated term the deal conceded.")
    got: Annotated[list[Text200], Field(min_length=1, max_length=20)] = Field(
        description="What came back: terms of the playbook, or the given term's declared `gets`."
    )
    note: Text500 | None = None


class OutcomeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    won: StrictBool
    close_date: IsoDate | None = Field(default=None, description="Defaults to today (UTC).")
    final_terms: TermMap | None = Field(
        default=None,
        description="The terms the deal closed on; by default its current terms. Validated "
        "against the playbook version the deal was checked with.",
    )
    loss_reason: Text500 | None = Field(
        default=None, description="Required when the deal was lost; refused when it was won."
    )
    trades: Annotated[list[OutcomeTradeInput], Field(max_length=50)] = []


class OutcomeTrade(BaseModel):
    gave: str
    got: list[str]
    note: str | None = None
    inferred: bool = Field(
        description="True when inferred from the rules that widened the term, not recorded."
    )


class OutcomeTermRead(BaseModel):
    key: str
    kind: Literal["number", "choice", "flag"]
    unit: str | None
    opening: WireValue = Field(description="Numbers come back as decimal strings.")
    target: WireValue
    walk_away: WireValue
    final: WireValue
    status: Status
    variance_ratio: Ratio
    conceded: Decimal | None = Field(
        description="Distance from opening toward walk-away, in the unit (steps for choices, 0 or "
        "1 for flags); 0 when the final value is better than the opening."
    )
    conceded_share: Ratio | None = Field(
        description="`conceded` over the opening-to-walk-away range: 0 held, 1 at the bottom "
        "line, above 1 beyond it. Null without an opening or range."
    )
    held: bool | None = Field(description="At or better than target; null without a target.")
    traded: bool
    gets: list[str]
    cost: Money | None = Field(
        description="Money conceded: the term's cost expression at the final value minus at the "
        "opening; null when the term does not convert to money for this deal."
    )


class OutcomeRead(BaseModel):
    external_id: str
    won: bool
    close_date: date | None
    closed_at: datetime
    source: str
    recorded_by: str
    loss_reason: str | None
    playbook: PlaybookVersionRef | None
    amount: Money | None
    verdict: Verdict | None
    variance_score: Ratio | None
    cost: Money | None = Field(description="The sum of the terms' costs.")
    final_terms: dict[str, bool | int | float | str]
    trades: list[OutcomeTrade]
    terms: list[OutcomeTermRead]
    created_at: datetime
    updated_at: datetime


# --- preparation ---------------------------------------------------------------------------------


class PreparedTerm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: TermInput
    opening: TermInput
    bottom_line: TermInput


class PremortemItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    risk: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    mitigation: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class PreparationWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        default=None, description="What the rep wants from the deal."
    )
    terms: Annotated[dict[TermKey, PreparedTerm], Field(max_length=200)] = Field(
        default={},
        description="Per key term: goal, opening and bottom line, in the term's kind. Number "
        "terms run opening → goal → bottom line from best to worst for us.",
    )
    customer_interests: Annotated[list[Text200], Field(min_length=1, max_length=20)]
    premortem: Annotated[list[PremortemItem], Field(min_length=3, max_length=3)] = Field(
        description="Three ways the deal could fail, each with its mitigation."
    )


class PreparedTermRead(BaseModel):
    goal: WireValue
    opening: WireValue
    bottom_line: WireValue


class PreparationRead(BaseModel):
    external_id: str
    goal: str | None
    terms: dict[str, PreparedTermRead]
    customer_interests: list[str]
    premortem: list[PremortemItem]
    prepared_by: str
    version: int
    created_at: datetime
    updated_at: datetime


# --- after-action review -------------------------------------------------------------------------


class AfterActionReviewWrite(BaseModel):
    """The subjective value inventory: each outcome dimension from 1 (worst) to 7 (best)."""

    model_config = ConfigDict(extra="forbid")

    instrumental: Score = Field(description="The economic terms won.")
    process: Score = Field(description="How fair and well run the negotiation felt.")
    relationship: Score = Field(description="Trust and goodwill with the customer.")
    self_score: Score = Field(alias="self", description="How the rep feels about themself.")
    note: Annotated[str, StringConstraints(max_length=4000)] | None = None


class AfterActionReviewRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    external_id: str
    instrumental: int
    process: int
    relationship: int
    self_score: int = Field(alias="self")
    note: str | None
    filed_by: str
    created_at: datetime
    updated_at: datetime
