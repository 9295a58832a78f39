"""What a check returns: plain, immutable values the API layer serialises."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

TermValue = Decimal | str | bool


class Verdict(StrEnum):
    auto_approved = "auto_approved"
    needs_approval = "needs_approval"
    blocked = "blocked"


class Status(StrEnum):
    better = "better"
    within = "within"
    exception = "exception"
    blocked = "blocked"
    missing = "missing"


class EffectiveBand(NamedTuple):
    """A term's band after rules: numbers use low/high, choices `allowed`, flags `preferred`."""

    low: Decimal | None = None
    high: Decimal | None = None
    walk_away: Decimal | None = None
    allowed: tuple[str, ...] | None = None
    preferred: bool | None = None


class TermResult(NamedTuple):
    key: str
    kind: str
    owner: str
    priority: int
    value: TermValue | None
    status: Status
    variance: Decimal
    variance_ratio: Decimal
    tier: int | None
    approvers: tuple[str, ...]
    band: EffectiveBand
    rules: tuple[str, ...]


class ApprovalStep(NamedTuple):
    """One approval request the deal would need: a group at a step of its chain."""

    group: str
    step: int
    terms: tuple[str, ...]


class Ask(NamedTuple):
    """A condition the deal does not yet meet, phrased as what to ask the customer for."""

    term: str
    op: str
    value: object


class Trade(NamedTuple):
    """A rule whose conditions, if the customer gave them, would shrink an exception."""

    term: str
    rule: str
    asks: tuple[Ask, ...]
    band_edge_before: Decimal | None
    band_edge_after: Decimal | None
    status_after: Status
    variance_before: Decimal
    variance_after: Decimal
    variance_removed: Decimal
    resolves: bool


class CheckResult(NamedTuple):
    playbook: str
    version: int
    verdict: Verdict
    variance_score: Decimal
    terms: tuple[TermResult, ...]
    steps: tuple[ApprovalStep, ...]
    rules_fired: tuple[str, ...]
    trades: tuple[Trade, ...]
