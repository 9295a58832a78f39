"""Analytics filters and report rows.

Every report is one flat table (`rows`), so its JSON and CSV forms carry the same figures: each
row's `group` holds the values of the requested `group_by` dimensions, in that order, and becomes
the first CSV columns.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from governance.engine.document import PlaybookKey, TermKey
from governance.figures import Money, Ratio
from governance.reps.schemas import Style

Text100 = Annotated[str, Field(min_length=1, max_length=100)]


class Dimension(StrEnum):
    """What rows can be grouped (and filtered) by."""

    region = "region"
    segment = "segment"
    team = "team"
    rep = "rep"
    style = "style"
    rep_region = "rep_region"
    playbook = "playbook"
    version = "version"
    month = "month"
    currency = "currency"


class Across(StrEnum):
    """Who is compared with whom in the consistency report."""

    region = "region"
    team = "team"
    rep_region = "rep_region"


class Filters(BaseModel):
    """Which deals a report covers. Dates are inclusive; each report says which date it uses."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    date_from: date | None = Field(default=None, alias="from")
    date_to: date | None = Field(default=None, alias="to")
    region: Text100 | None = None
    segment: Text100 | None = None
    team: Text100 | None = None
    rep: Text100 | None = None
    style: Style | None = None
    playbook: PlaybookKey | None = None
    version: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None

    @model_validator(mode="after")
    def _range(self) -> Filters:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("`from` is after `to`")
        return self


GroupValue = str | int | None


class Distribution(BaseModel):
    mean: Decimal | None
    p50: Decimal | None
    p90: Decimal | None


class VarianceRow(BaseModel):
    """`term` null: the deals' variance scores, and the share with any term outside its band.
    Otherwise one term's variance ratio, over the deals that state it."""

    group: dict[str, GroupValue]
    term: str | None
    deals: int
    mean: Ratio | None
    p50: Ratio | None
    p90: Ratio | None
    outside_band_share: Ratio | None


class VerdictRow(BaseModel):
    group: dict[str, GroupValue]
    deals: int
    auto_approved: int
    needs_approval: int
    blocked: int
    auto_approval_rate: Ratio | None


class ConcessionRow(BaseModel):
    """Won deals only (a lost deal cost nothing). `term` null: totals over every term."""

    group: dict[str, GroupValue]
    term: str | None
    deals: int = Field(description="Won deals (with the term stated, on term rows).")
    conceded: int = Field(description="Deals that conceded (moved from opening toward walk-away).")
    mean_conceded_share: Ratio | None = Field(
        description="Mean share of the opening→walk-away range conceded, over deals stating it."
    )
    held: int = Field(description="Deals that closed at or better than target.")
    cost: Money = Field(description="Money the concessions cost (deal currency, summed).")
    cost_per_deal: Money | None
    gives_without_gets: int = Field(description="Concessions that got nothing in return.")
    gives_without_gets_cost: Money


class ApprovalRow(BaseModel):
    """Decided requests (approved, rejected, countered). `approver_group` and `step` null: all."""

    group: dict[str, GroupValue]
    approver_group: str | None
    step: int | None
    decided: int
    cycle_hours_p50: Decimal | None
    cycle_hours_p90: Decimal | None
    within_sla_share: Ratio | None
    escalated: int
    rejection_rate: Ratio | None
    counter_rate: Ratio | None


class OutcomeRow(BaseModel):
    """Closed deals by variance-score band at close. `band` null: every band."""

    group: dict[str, GroupValue]
    band: str | None
    closed: int
    won: int
    win_rate: Ratio | None
    average_discount: Decimal | None = Field(
        description="Mean final value of the discount term (`discount_term`) on won deals."
    )
    margin_kept: Ratio | None = Field(
        description="1 − concession cost ÷ amount, over won deals with an amount."
    )


class VersionRow(BaseModel):
    """A playbook version against the previous one, each over the same number of days: the new
    version's first days against the previous version's last days."""

    playbook: str
    version: int
    previous_version: int
    window_days: int
    version_from: date
    version_to: date
    previous_from: date
    previous_to: date
    closed: int
    previous_closed: int
    win_rate: Ratio | None
    previous_win_rate: Ratio | None
    mean_variance_score: Ratio | None
    previous_mean_variance_score: Ratio | None
    auto_approval_rate: Ratio | None
    previous_auto_approval_rate: Ratio | None
    margin_kept: Ratio | None
    previous_margin_kept: Ratio | None


class ReviewRow(BaseModel):
    group: dict[str, GroupValue]
    reviews: int
    instrumental: Decimal | None
    process: Decimal | None
    relationship: Decimal | None
    self: Decimal | None
    overall: Decimal | None


class ConsistencyRow(BaseModel):
    """Comparable won deals (same playbook, segment, amount band) where one term's outcome
    differs materially across regions or teams: `most_given` conceded the most."""

    term: str
    playbook: str
    segment: str | None
    currency: str | None
    amount_band: str
    across: Across
    most_given: str | None
    most_given_share: Ratio
    most_given_final: Decimal | None
    most_given_deals: int
    least_given: str | None
    least_given_share: Ratio
    least_given_final: Decimal | None
    least_given_deals: int
    spread: Ratio = Field(description="Difference in mean conceded share (0–1 of the range).")
    compared: int = Field(description="How many regions or teams had enough deals to compare.")


RowT = TypeVar("RowT", bound=BaseModel)


class Report(BaseModel, Generic[RowT]):
    group_by: list[Dimension]
    filters: Filters
    rows: list[RowT]


class VarianceReport(Report[VarianceRow]):
    pass


class VerdictReport(Report[VerdictRow]):
    pass


class ConcessionReport(Report[ConcessionRow]):
    pass


class ApprovalReport(Report[ApprovalRow]):
    pass


class OutcomeReport(Report[OutcomeRow]):
    discount_term: TermKey


class ReviewReport(Report[ReviewRow]):
    pass


class VersionReport(BaseModel):
    filters: Filters
    rows: list[VersionRow]


class ConsistencyReport(BaseModel):
    filters: Filters
    across: Across
    min_deals: int
    min_spread: Decimal
    rows: list[ConsistencyRow]
