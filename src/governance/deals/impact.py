"""What a playbook draft would change on real history: the latest checks of recent deals re-run
under the live version and under the draft with the pure engine (nothing is stored)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from governance.db import utcnow
from governance.deals import service as deal_service
from governance.deals.repository import DealRepository
from governance.engine import DealInputError, compile_playbook, evaluate
from governance.engine.compiler import CompiledPlaybook
from governance.engine.document import PlaybookDocument
from governance.engine.results import CheckResult, Status
from governance.playbooks import service as playbook_service
from governance.playbooks.models import VersionStatus
from governance.playbooks.repository import PlaybookRepository

DEFAULT_DAYS = 90
MAX_DAYS = 3650
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
NEEDS_APPROVAL = frozenset({Status.exception, Status.blocked})


@dataclass(frozen=True, slots=True)
class TermImpact:
    """A term's approvals across the deals: how many newly need approval, how many no longer."""

    key: str
    label: str
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class GroupImpact:
    """How many deals an approver group would be asked to approve, before and after."""

    group: str
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass(slots=True)
class Impact:
    key: str
    version: int | None  # the version measured
    baseline: int | None  # the version it is measured against
    days: int
    limit: int
    since: datetime
    deals: int = 0  # deals re-checked
    skipped: int = 0  # deals whose stated terms no longer parse under one of the versions
    changed: int = 0  # deals whose verdict differs
    moves: list[tuple[str, str, int]] = field(default_factory=list)  # before, after, deals
    terms: list[TermImpact] = field(default_factory=list)
    groups: list[GroupImpact] = field(default_factory=list)
    verdicts_before: dict[str, int] = field(default_factory=dict)
    verdicts_after: dict[str, int] = field(default_factory=dict)


def _run(
    compiled: CompiledPlaybook, terms: dict[str, object], attrs: dict[str, object]
) -> CheckResult:
    # A deal may state a term one of the versions does not define (added or removed by the
    # draft): it is left out for that version rather than refusing the whole deal.
    known = {k: v for k, v in terms.items() if k in compiled.by_key}
    return evaluate(compiled, compiled.parse_terms(known), attrs)


def _needing(result: CheckResult) -> set[str]:
    return {t.key for t in result.terms if t.status in NEEDS_APPROVAL}


def _groups(result: CheckResult) -> set[str]:
    return {step.group for step in result.steps}


def impact(
    session: Session,
    playbook_key: str,
    live: PlaybookDocument,
    draft: PlaybookDocument,
    *,
    days: int = DEFAULT_DAYS,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
    version: int | None = None,
    baseline: int | None = None,
) -> Impact:
    """Re-check the newest `limit` deals last checked against `playbook_key` in the last `days`
    under `live` and under `draft`; count what the draft changes."""
    days = min(max(days, 1), MAX_DAYS)
    limit = min(max(limit, 1), MAX_LIMIT)
    since = (now or utcnow()) - timedelta(days=days)
    out = Impact(
        key=playbook_key, version=version, baseline=baseline, days=days, limit=limit, since=since
    )
    before_plan, after_plan = compile_playbook(live, 1), compile_playbook(draft, 2)
    labels = {t.key: t.label or t.key for t in (*live.terms, *draft.terms)}
    starts: Counter[str] = Counter()
    stops: Counter[str] = Counter()
    groups_before: Counter[str] = Counter()
    groups_after: Counter[str] = Counter()
    moves: Counter[tuple[str, str]] = Counter()
    verdicts_before: Counter[str] = Counter()
    verdicts_after: Counter[str] = Counter()
    for deal in DealRepository(session).recently_checked(playbook_key, since, limit):
        attrs = deal_service.engine_attributes(deal_service.attributes_of(deal))
        terms = dict(deal.terms or {})
        try:
            before = _run(before_plan, terms, attrs)
            after = _run(after_plan, terms, attrs)
        except DealInputError:
            out.skipped += 1
            continue
        out.deals += 1
        verdicts_before[before.verdict.value] += 1
        verdicts_after[after.verdict.value] += 1
        if before.verdict != after.verdict:
            out.changed += 1
            moves[(before.verdict.value, after.verdict.value)] += 1
        needed_before, needed_after = _needing(before), _needing(after)
        starts.update(needed_after - needed_before)
        stops.update(needed_before - needed_after)
        groups_before.update(_groups(before))
        groups_after.update(_groups(after))
    out.moves = [(b, a, n) for (b, a), n in moves.most_common()]
    out.terms = sorted(
        (
            TermImpact(key, labels.get(key, key), starts[key], stops[key])
            for key in starts.keys() | stops.keys()
        ),
        key=lambda t: (-(t.start + t.stop), t.key),
    )
    out.groups = sorted(
        (
            GroupImpact(g, groups_before[g], groups_after[g])
            for g in groups_before.keys() | groups_after.keys()
        ),
        key=lambda g: (-abs(g.change), g.group),
    )
    out.verdicts_before = dict(verdicts_before)
    out.verdicts_after = dict(verdicts_after)
    return out


@dataclass(frozen=True, slots=True)
class PlaybookVersionRef:
    number: int
    document: PlaybookDocument


def baseline_of(session: Session, key: str, number: int) -> PlaybookVersionRef | None:
    """What a version is measured against: a draft against the published version, a published
    or superseded one against the version before it."""
    playbook, version = playbook_service.get_version(session, key, number)
    repo = PlaybookRepository(session)
    if version.status == VersionStatus.draft:
        base = repo.published_version(playbook.id)
    else:
        base = repo.version(playbook.id, number - 1) if number > 1 else None
    if base is None:
        return None
    return PlaybookVersionRef(base.number, playbook_service.document_of(base))


def impact_of_version(
    session: Session,
    key: str,
    number: int,
    *,
    days: int = DEFAULT_DAYS,
    limit: int = DEFAULT_LIMIT,
) -> Impact | None:
    """The version's effect on recent deals against its baseline (None without one)."""
    _playbook, version = playbook_service.get_version(session, key, number)
    base = baseline_of(session, key, number)
    if base is None:
        return None
    return impact(
        session,
        key,
        base.document,
        playbook_service.document_of(version),
        days=days,
        limit=limit,
        version=number,
        baseline=base.number,
    )
