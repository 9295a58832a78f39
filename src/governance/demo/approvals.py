"""How a submitted deal's review plays out in the sample history: its approval requests, decided
with realistic delays, escalated when overdue, and ended by the first rejection or counter.

The rules are the approvals domain's own: a request per (group, step) of the check, SLAs by
`approvals.service.sla_hours`, due and reminder times and cycle figures by `approvals.timing`,
escalation up the deal's own ladder by `engine.escalation.next_group`. What is simulated is
only the people: how long each group takes, and what it decides.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from governance.approvals import service as approval_service
from governance.approvals import timing
from governance.deals.serialize import number
from governance.demo.market import half
from governance.demo.people import APPROVERS, DECISION_HOURS
from governance.demo.repository import ID_STRIDE
from governance.engine.document import Direction, NumberTerm
from governance.engine.escalation import next_group
from governance.engine.results import CheckResult, TermValue
from governance.playbooks.registry import Published
from governance.settings import Settings

JUSTIFICATIONS = (
    "Competitive displacement; the incumbent offered more.",
    "Strategic logo for the region.",
    "Customer's procurement policy requires it.",
    "Expansion expected within the year.",
)


@dataclass(slots=True)
class Review:
    """A deal's review as of the end of the history."""

    # One dict per request, keyed by `ApprovalRequest` column (terms as stored JSON).
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: str = "in_review"  # the deal's status
    ended: datetime | None = None  # when the review ended; None while it is under way
    countered: dict[str, TermValue] = field(default_factory=dict)  # an approver's counter


@dataclass(slots=True)
class _Plan:
    """When one request opens, falls due, escalates and is decided, and what it decides."""

    k: int
    group: str
    step: int
    terms: tuple[str, ...]
    opened: datetime
    due: timing.Deadlines
    decided: datetime
    escalated: datetime | None = None
    target: tuple[str, timing.Deadlines] | None = None  # the new holder, from `escalated` on
    remind_jitter: timedelta = timedelta()
    decision: str = "approved"


class Reviews:
    """Plays out the reviews of submitted deals up to `as_of`; pure apart from the random draws.

    The demo's approver groups have no settings of their own, so a group's SLA is the playbook
    version's, else the service default (`sla_hours`), and an overdue request whose ladder has
    no later tier stays with its group.
    """

    def __init__(self, as_of: datetime, sla_hours: int) -> None:
        self.as_of = as_of
        self.settings = Settings.model_construct(approval_sla_hours=sla_hours)
        self._hours: dict[tuple[int, str], int] = {}

    def sla(self, published: Published, group: str) -> int:
        """The group's SLA in hours under the version, by the service's precedence."""
        key = (published.version_id, group)
        hours = self._hours.get(key)
        if hours is None:
            hours = approval_service.sla_hours({}, self.settings, group, published)
            self._hours[key] = hours
        return hours

    def review(
        self,
        rng: random.Random,
        deal_id: int,
        submitted: datetime,
        result: CheckResult,
        body: dict[str, Any],
        published: Published,
    ) -> Review:
        """The requests of the check (`result`, its JSON `body`) submitted at `submitted`."""
        plans = self._plan(rng, submitted, result, published)
        # The first rejection or counter ends the review; what was still open is withdrawn.
        enders = sorted(
            (p for p in plans if p.decision != "approved"), key=lambda p: (p.decided, p.k)
        )
        stopper = enders[0] if enders else None
        stop = stopper.decided if stopper else None
        # Nothing happens to a request after `cutoff`: today, or the end of the review.
        cutoff = self.as_of if stop is None else min(self.as_of, stop)
        by_key = {t["key"]: t for t in body["terms"]}
        out = Review()
        for plan in plans:
            row = self._request(rng, deal_id, submitted, plan, by_key)
            opened, (due, remind) = plan.opened, plan.due
            is_open = opened <= cutoff and (stop is None or opened < stop or plan is stopper)
            decided = plan.decided
            if is_open:
                row["first_opened_at"] = opened
                if plan.escalated is not None and plan.escalated <= cutoff:
                    row["escalated_at"] = plan.escalated
                    if plan.target is not None:
                        row["group"], (due, remind) = plan.target
                        row["escalation_level"] = 1
                        opened = plan.escalated
                reminded = remind + plan.remind_jitter
                row.update(status="pending", opened_at=opened, due_at=due, remind_at=remind)
                if reminded < decided and reminded <= cutoff:
                    row["reminded_at"] = reminded
            if is_open and decided <= cutoff:
                self._decide(rng, row, plan, result, published, out)
            elif stopper is not None and stop is not None and stop <= self.as_of:
                row.update(
                    status="withdrawn",
                    decided_at=stop,
                    decided_by=_approver(rng, stopper.group),
                    reason=f"deal {stopper.decision} by {stopper.group}",
                )
            out.requests.append(row)
        if stopper is not None and stop is not None and stop <= self.as_of:
            out.status, out.ended = stopper.decision, stop
        elif all(r["status"] == "approved" for r in out.requests):
            out.status, out.ended = "approved", max(r["decided_at"] for r in out.requests)
        return out

    def _plan(
        self, rng: random.Random, submitted: datetime, result: CheckResult, published: Published
    ) -> list[_Plan]:
        """Each request's times and decision, in step order: a step opens once every earlier
        step of its terms was decided."""
        ratios = {t.key: t.variance_ratio for t in result.terms}
        fired = {t.key: t.rules for t in result.terms}
        document = published.compiled.document
        plans: list[_Plan] = []
        for k, step in enumerate(sorted(result.steps, key=lambda s: (s.step, s.group))):
            terms = tuple(step.terms)
            earlier = [p.decided for p in plans if p.step < step.step and set(p.terms) & set(terms)]
            opened = max([submitted, *earlier])
            due = timing.deadlines(opened, self.sla(published, step.group))
            decided = opened + timedelta(
                hours=rng.lognormvariate(math.log(DECISION_HOURS[step.group]), 1.0)
            )
            plan = _Plan(k, step.group, step.step, terms, opened, due, decided)
            if decided > due.due_at:
                # The SLA sweep (every few minutes) escalates it along the deal's own ladder:
                # a new holder, with its own SLA from the escalation on.
                plan.escalated = due.due_at + timedelta(minutes=rng.randint(0, 5))
                target = next_group(published.compiled, terms, fired, step.group, step.group)
                if target is not None:
                    hours = self.sla(published, target)
                    plan.target = (target, timing.deadlines(plan.escalated, hours))
                    plan.decided = plan.escalated + timedelta(
                        hours=rng.lognormvariate(math.log(3.0), 0.8)
                    )
            plan.remind_jitter = timedelta(minutes=rng.randint(0, 5))
            worst = float(min(max(ratios[key] for key in terms), Decimal(1)))
            numeric = any(isinstance(document.term(key), NumberTerm) for key in terms)
            draw = rng.random()
            reject = 0.02 + 0.07 * worst
            counter_rate = 0.03 + 0.09 * worst if numeric else 0.0
            plan.decision = (
                "rejected"
                if draw < reject
                else "countered"
                if draw < reject + counter_rate
                else "approved"
            )
            plans.append(plan)
        return plans

    @staticmethod
    def _request(
        rng: random.Random,
        deal_id: int,
        submitted: datetime,
        plan: _Plan,
        by_key: Mapping[str, dict[str, Any]],
    ) -> dict[str, Any]:
        """The request as submitted: waiting, covering its terms as the check reported them."""
        return {
            "id": deal_id * ID_STRIDE + plan.k,
            "group": plan.group,
            "chain_group": plan.group,
            "step": plan.step,
            "terms": [
                {
                    **{k: v for k, v in by_key[key].items() if k != "rules"},
                    "justification": _justification(rng),
                }
                for key in plan.terms
            ],
            "status": "waiting",
            "opened_at": None, "due_at": None, "remind_at": None, "reminded_at": None,
            "escalated_at": None, "escalation_level": 0, "decided_at": None,
            "decided_by": None, "reason": None, "decided_values": None,
            "counter_terms": None, "first_opened_at": None, "cycle_seconds": None,
            "within_sla": None,
            "created_at": submitted,
        }  # fmt: skip

    @staticmethod
    def _decide(
        rng: random.Random,
        row: dict[str, Any],
        plan: _Plan,
        result: CheckResult,
        published: Published,
        review: Review,
    ) -> None:
        status, decided = plan.decision, plan.decided
        cycle = timing.cycle(
            row["first_opened_at"], row["due_at"], row["escalation_level"], decided
        )
        row.update(
            status=status,
            decided_at=decided,
            decided_by=_approver(rng, row["group"]),
            decided_values={e["key"]: e["value"] for e in row["terms"]},
            cycle_seconds=cycle.cycle_seconds,
            within_sla=cycle.within_sla,
        )
        if status == "rejected":
            row["reason"] = "Beyond what the margin on this account allows."
        elif status == "countered":
            counter = _counter(result, plan.terms, published)
            review.countered.update(counter)
            row["counter_terms"] = {k: number(v) for k, v in counter.items()}
            row["reason"] = "We can meet you halfway on this."
        elif rng.random() < 0.3:
            row["reason"] = "Fine given the account's potential."


def _counter(result: CheckResult, keys: Iterable[str], published: Published) -> dict[str, Decimal]:
    """An approver's counter: number terms halfway back to the band edge."""
    out: dict[str, Decimal] = {}
    wanted = set(keys)
    for term in result.terms:
        if term.key not in wanted or not isinstance(term.value, Decimal):
            continue
        doc_term = published.compiled.document.term(term.key)
        assert isinstance(doc_term, NumberTerm)
        lower = doc_term.direction is Direction.lower_is_better
        edge = term.band.high if lower else term.band.low
        if edge is None:
            continue
        out[term.key] = half(float(term.value + edge) / 2)
    return out


def _approver(rng: random.Random, group: str) -> str:
    return rng.choice(APPROVERS.get(group, (f"{group}.lead",)))


def _justification(rng: random.Random) -> str | None:
    if rng.random() < 0.5:
        return None
    return rng.choice(JUSTIFICATIONS)
