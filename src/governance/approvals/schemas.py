"""Approval payloads: submissions, the approver's queue, decisions, delegation, group settings."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    UrlConstraints,
    ValidationInfo,
    field_validator,
)

from governance.approvals.models import RequestStatus
from governance.deals.models import DealStatus
from governance.deals.schemas import (
    BandRead,
    DealAttributes,
    DealCheckRead,
    TermInput,
    TradeRead,
)
from governance.engine.document import TermKey
from governance.engine.results import Status
from governance.types import IsoDateTime

GroupName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,99}$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=4000, strip_whitespace=True)]
Justification = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    counter = "counter"


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    justifications: Annotated[dict[TermKey, Justification], Field(max_length=200)] = Field(
        default={}, description="Why the deal needs each exception, by term key."
    )


class CoveredTerm(BaseModel):
    """One term a request covers, as the approver needs it to decide."""

    key: str
    label: str
    kind: Literal["number", "choice", "flag"]
    unit: str | None
    owner: str
    priority: int
    value: str | bool | None = Field(description="Numbers come back as decimal strings.")
    status: Status
    variance: str
    variance_ratio: str
    tier: int | None
    approvers: list[str] = Field(description="The term's whole approval chain, in order.")
    band: BandRead
    justification: str | None = None


class DealSummary(BaseModel):
    external_id: str
    name: str | None
    status: DealStatus
    attributes: DealAttributes
    terms: dict[str, bool | int | float | str]


class PastDecision(BaseModel):
    request_id: int
    group: str
    step: int
    status: RequestStatus
    decided_by: str | None
    on_behalf_of: str | None
    admin_override: bool
    decided_at: datetime | None
    reason: str | None
    values: dict[str, Any] | None = Field(description="The term values decided on.")
    counter_terms: dict[str, Any] | None


class PlaybookVersionRef(BaseModel):
    key: str
    version: int


class ApprovalRequestRead(BaseModel):
    id: int
    version: int = Field(description="Send back as If-Match (the ETag) when deciding.")
    status: RequestStatus
    group: str = Field(description="The group that holds the request now.")
    chain_group: str = Field(description="The group the playbook's chain names for this step.")
    step: int
    round: int
    deal: DealSummary
    terms: list[CoveredTerm]
    trades: list[TradeRead] = Field(description="Suggested trades for the covered terms.")
    history: list[PastDecision] = Field(description="Earlier decisions on this deal.")
    playbook: PlaybookVersionRef = Field(description="The version this review is pinned to.")
    submitted_by: str
    opened_at: datetime | None
    due_at: datetime | None
    reminded_at: datetime | None
    escalated_at: datetime | None
    escalation_level: int
    decision: PastDecision | None


class ApprovalPage(BaseModel):
    items: list[ApprovalRequestRead]
    next_cursor: str | None


class RequestSummary(BaseModel):
    id: int
    version: int
    status: RequestStatus
    group: str
    chain_group: str
    step: int
    terms: list[str]
    playbook: PlaybookVersionRef
    opened_at: datetime | None
    due_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None = Field(
        description="Who decided (or withdrew): `key:<id>:<name>`, with ` for sf:<user Id>` when "
        "the Salesforce package acted for a rep."
    )
    reason: str | None
    submitted_by: str = Field(description="Who submitted the round, named as `decided_by`.")
    counter_terms: dict[str, Any] | None = Field(
        description="A counter's values, for the rep to accept."
    )
    counter_accepted_at: datetime | None
    counter_accepted_by: str | None = Field(description="Who accepted the counter.")


class KeptApproval(BaseModel):
    term: str
    group: str
    approved_value: str | bool
    value: str | bool


class SubmissionRead(BaseModel):
    """What a submission or re-check did to the deal's review."""

    deal_status: DealStatus
    check: DealCheckRead
    requests: list[RequestSummary] = Field(description="The current round's requests.")
    opened: list[int] = Field(description="Requests opened or reopened by this change.")
    updated: list[int] = Field(description="Open requests whose terms changed (new version).")
    withdrawn: list[int] = Field(description="Open requests no longer needed.")
    kept: list[KeptApproval] = Field(
        description="Approvals still valid because the value is no worse than the one approved."
    )


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    # Field validators (not a model validator) so a 422 names the missing field itself.
    reason: Reason | None = Field(
        default=None, validate_default=True, description="Required to reject or counter."
    )
    counter_terms: Annotated[dict[TermKey, TermInput], Field(max_length=200)] | None = Field(
        default=None,
        validate_default=True,
        description="For a counter: the values you would approve, by term key.",
    )

    @field_validator("reason")
    @classmethod
    def _reason_needed(cls, value: str | None, info: ValidationInfo) -> str | None:
        decision = info.data.get("decision")
        if value is None and decision in (Decision.reject, Decision.counter):
            raise ValueError(f"a reason is required to {decision.value}")
        return value

    @field_validator("counter_terms")
    @classmethod
    def _counter_terms_fit(
        cls, value: dict[str, object] | None, info: ValidationInfo
    ) -> dict[str, object] | None:
        decision = info.data.get("decision")
        if decision is Decision.counter and not value:
            raise ValueError("a counter needs counter_terms: the values you would approve")
        if decision is not None and decision is not Decision.counter and value:
            raise ValueError("counter_terms are only for a counter")
        return value


class BatchDecision(DecisionCreate):
    id: int = Field(ge=1, le=2**31 - 1)
    version: int = Field(
        ge=1,
        le=2**31 - 1,
        description="The version you read (the request's ETag); a stale one fails that item.",
    )


class BatchDecisions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: Annotated[list[BatchDecision], Field(min_length=1, max_length=100)]


class BatchItemResult(BaseModel):
    id: int
    status: int = Field(description="The HTTP status this decision alone would have had.")
    request: ApprovalRequestRead | None = None
    problem: dict[str, Any] | None = Field(default=None, description="RFC 9457 body on failure.")


class BatchResult(BaseModel):
    results: list[BatchItemResult]


class AcceptCounter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: int = Field(ge=1, le=2**31 - 1, description="The countered request to accept.")


class Reassign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: GroupName
    reason: Reason


class DelegationWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delegate_key_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="The id of the delegate's API key."
    )
    # After `delegate_key_id`, so its validator sees it and a 422 names `delegate`.
    delegate: PersonName | None = Field(
        default=None,
        validate_default=True,
        description="Or the name of the delegate's API key, if no other active key has it. "
        "Either way the delegation is stored and checked by key id.",
    )
    starts_at: IsoDateTime
    ends_at: IsoDateTime

    @field_validator("delegate")
    @classmethod
    def _one_delegate(cls, value: str | None, info: ValidationInfo) -> str | None:
        by_id = info.data.get("delegate_key_id")
        if value is None and by_id is None:
            raise ValueError("name the delegate: `delegate` (a key name) or `delegate_key_id`")
        if value is not None and by_id is not None:
            raise ValueError("give `delegate` or `delegate_key_id`, not both")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _window(cls, value: datetime, info: ValidationInfo) -> datetime:
        # A time without a zone is taken to be UTC, as everywhere else in the service.
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        starts_at = info.data.get("starts_at")
        if info.field_name == "ends_at" and starts_at is not None and value <= starts_at:
            raise ValueError("ends_at must be after starts_at")
        return value


class DelegationRead(BaseModel):
    delegator: str = Field(description="The name of the delegator's API key.")
    delegator_key_id: int
    delegate: str = Field(description="The name of the delegate's API key.")
    delegate_key_id: int
    groups: list[str]
    starts_at: datetime
    ends_at: datetime
    active: bool


class MyDelegations(BaseModel):
    given: DelegationRead | None = Field(description="The delegation you gave, if any.")
    held: list[DelegationRead] = Field(description="Delegations active for you right now.")


class GroupWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sla_hours: int | None = Field(default=None, ge=1, le=8760)
    webhook_url: Annotated[AnyHttpUrl, UrlConstraints(max_length=2000)] | None = Field(
        default=None,
        description="Slack-compatible incoming webhook, never shown again once set: leave it "
        "out to keep the current one, send null to remove it.",
    )
    escalation_group: GroupName | None = None


class GroupRead(BaseModel):
    name: str
    sla_hours: int = Field(description="Effective SLA (the service default when not set).")
    sla_hours_set: bool
    webhook_configured: bool
    webhook_host: str | None
    escalation_group: str | None
