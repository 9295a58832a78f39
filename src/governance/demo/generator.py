"""A realistic, deterministic sample history for the analytics: `governance demo --deals N`.

Two years of deals across regions, teams and reps of every negotiation style, checked by the real
engine against the standard playbook (version 1, then version 2 with a tighter discount band),
with the approvals, outcomes and after-action reviews that would follow. Everything the API and
the analytics read is filled as the service itself fills it: stored checks, per-term latest
figures, the deal's analytics columns, approval cycle times and per-term outcome figures.

Determinism: each chunk of `CHUNK` deals draws from its own generator seeded by (seed, chunk),
and every id is derived from the deal's number (a deal's check, outcome and review share its id;
its approval requests and outcome terms take `id × 16 + k`), so the same seed and `as_of` give
identical rows whatever the database. The timeline is relative to `as_of` (today by default).

Speed: rows are built as plain tuples (no ORM objects, no API calls) and written per chunk in
one transaction: COPY on PostgreSQL, executemany inserts on SQLite.
"""

from __future__ import annotations

import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from governance.approvals.models import ApprovalRequest
from governance.auth.principal import SYSTEM
from governance.db import Database
from governance.deals.models import Deal, DealCheck, DealTermCheck
from governance.deals.repository import DealRepository
from governance.deals.schemas import salesforce_id_18
from governance.deals.serialize import check_body, number
from governance.engine import evaluate
from governance.engine.document import NumberTerm, PlaybookDocument
from governance.engine.outcomes import OutcomeFigures, measure
from governance.engine.results import CheckResult, Status, TermValue, Verdict
from governance.errors import Conflict
from governance.outcomes.models import AfterActionReview, Outcome, OutcomeTerm
from governance.playbooks import formats
from governance.playbooks import service as playbook_service
from governance.playbooks.models import Playbook, PlaybookVersion, Signoff
from governance.playbooks.registry import PlaybookRegistry, Published
from governance.reps.models import RepProfile
from governance.scaled import to_cents, to_micro

CHUNK = 5_000
HISTORY_DAYS = 730
# Version 2 goes live halfway, so the two versions can be compared over equal windows.
V2_AFTER_DAYS = 365
ID_STRIDE = 16  # approval requests and outcome terms per deal, at most
PLAYBOOK = "standard"
V2_DISCOUNT_HIGH = 12  # version 2: reps may agree 12 points of discount alone, not 15

# --- the organisation -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    region: str
    countries: tuple[str, ...]
    weight: float
    # Extra discount points this team gives comparable deals: what consistency analytics find.
    discount_bias: float
    currency: str = "USD"


TEAMS: tuple[Team, ...] = (
    Team("DACH", "EMEA", ("DE", "AT", "CH"), 0.16, 4.0),
    Team("France", "EMEA", ("FR", "BE", "LU"), 0.12, -1.0),
    Team("UK&I", "EMEA", ("GB", "IE"), 0.13, 0.0),
    Team("US East", "NA", ("US",), 0.20, 0.5),
    Team("US West", "NA", ("US", "CA"), 0.17, 0.0),
    Team("APAC", "APAC", ("AU", "SG", "JP", "IN"), 0.12, 1.5),
    Team("LATAM", "LATAM", ("BR", "MX", "CO"), 0.10, 2.0),
)
# Some French customers buy through the DACH team: the question consistency answers.
DACH_FRENCH_SHARE = 0.06

STYLES = ("closer", "diplomat", "strategist", "game_changer")


@dataclass(frozen=True, slots=True)
class StyleModel:
    # How far a rep of this style tends to concede (0 = holds the opening, 1 = the bottom line).
    propensity: float
    spread: float
    # How often they trade for a three-year commitment and annual prepayment.
    multi_year: float
    prepay: float
    free_months: float


STYLE_MODELS: dict[str, StyleModel] = {
    "closer": StyleModel(0.55, 0.15, 0.20, 0.35, 0.20),
    "diplomat": StyleModel(0.42, 0.12, 0.30, 0.40, 0.10),
    "strategist": StyleModel(0.25, 0.10, 0.60, 0.65, 0.03),
    "game_changer": StyleModel(0.30, 0.22, 0.45, 0.50, 0.06),
}

FIRST = (
    "Anna", "Lukas", "Sophie", "Jonas", "Marie", "Elias", "Camille", "Hugo", "Chloe", "Louis",
    "Olivia", "Harry", "Amelia", "Jack", "Emily", "Liam", "Noah", "Emma", "Ava", "Mason",
    "Ethan", "Mia", "Logan", "Grace", "Hiro", "Yuki", "Priya", "Arjun", "Mei", "Wei",
    "Lucas", "Gabriela", "Mateo", "Valentina", "Diego", "Isabela", "Paul", "Lea", "Nina", "Tom",
)  # fmt: skip
LAST = (
    "Schmidt", "Muller", "Weber", "Fischer", "Martin", "Bernard", "Dubois", "Moreau", "Smith",
    "Jones", "Taylor", "Brown", "Walsh", "Murphy", "Miller", "Davis", "Garcia", "Wilson",
    "Anderson", "Clark", "Lewis", "Young", "Tanaka", "Sato", "Sharma", "Patel", "Chen", "Lim",
    "Silva", "Santos", "Lopez", "Hernandez", "Costa", "Rossi", "Novak", "Keller", "Wagner",
    "Lambert", "Ortiz", "Reyes",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rep:
    rep: str
    name: str
    team: Team
    style: str


def make_reps(count: int = 40) -> tuple[Rep, ...]:
    """`count` reps spread over the teams by volume, styles rotating so each team has several."""
    rng = random.Random("demo-reps")
    first, last = list(FIRST), list(LAST)
    rng.shuffle(first)
    rng.shuffle(last)
    weights = [t.weight for t in TEAMS]
    per_team = [max(2, round(w / sum(weights) * count)) for w in weights]
    while sum(per_team) > count:
        per_team[per_team.index(max(per_team))] -= 1
    while sum(per_team) < count:
        per_team[per_team.index(min(per_team))] += 1
    reps: list[Rep] = []
    for team, size in zip(TEAMS, per_team, strict=True):
        for j in range(size):
            n = len(reps)
            given, family = first[n % len(first)], last[(n * 7) % len(last)]
            style = STYLES[(n + j) % len(STYLES)]
            reps.append(Rep(f"{given}.{family}".lower(), f"{given} {family}", team, style))
    return tuple(reps)


APPROVERS: dict[str, tuple[str, ...]] = {
    "finance": ("maria.keller", "tom.bauer", "julie.roux"),
    "sales_director": ("ben.hart", "clara.vogel"),
    "cfo": ("eva.lindqvist",),
    "legal": ("omar.haddad", "lisa.brandt"),
    "general_counsel": ("rachel.stone",),
    "product": ("ken.ito", "sara.mendes"),
    "cto": ("david.okafor",),
    "security": ("ines.duarte",),
}
# Median hours each group takes to decide (log-normal around it).
DECISION_HOURS: dict[str, float] = {
    "finance": 6.0, "sales_director": 4.0, "cfo": 14.0, "legal": 12.0, "general_counsel": 20.0,
    "product": 8.0, "cto": 14.0, "security": 10.0,
}  # fmt: skip
LOSS_REASONS = (
    "price", "competitor", "no_decision", "budget", "timing", "contract_terms", "product_fit",
)  # fmt: skip
LOSS_WEIGHTS = (0.28, 0.24, 0.16, 0.12, 0.08, 0.07, 0.05)
PRODUCT_LINES = ("platform", "analytics", "security")
COMPANY = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
    "Tyrell", "Cyberdyne", "Aperture", "Wonka", "Gringotts", "Oceanic", "Massive", "Nakatomi",
    "Monarch", "Virtucon", "Pied Piper",
)  # fmt: skip
SUFFIX = {
    "DE": "GmbH", "AT": "GmbH", "CH": "AG", "FR": "SA", "BE": "NV", "LU": "SARL", "GB": "Ltd",
    "IE": "Ltd", "US": "Inc", "CA": "Inc", "AU": "Pty Ltd", "SG": "Pte Ltd", "JP": "KK",
    "IN": "Pvt Ltd", "BR": "Ltda", "MX": "SA de CV", "CO": "SAS",
}  # fmt: skip

SEGMENTS = ("smb", "mid_market", "enterprise")
SEGMENT_WEIGHTS = (0.50, 0.35, 0.15)
# Median annual amount and log-normal sigma per segment.
AMOUNT = {"smb": (18_000.0, 0.55), "mid_market": (90_000.0, 0.5), "enterprise": (420_000.0, 0.65)}
CYCLE_DAYS = {"smb": 21.0, "mid_market": 45.0, "enterprise": 85.0}
BASE_DISCOUNT = {"smb": 4.0, "mid_market": 7.0, "enterprise": 10.0}
WIN_BASE = {"smb": 0.58, "mid_market": 0.50, "enterprise": 0.42}
STATED: dict[str, tuple[str, ...]] = {
    "smb": (
        "discount_pct", "contract_months", "billing_frequency", "payment_terms_days",
        "support_level", "price_increase_cap_pct",
    ),
    "mid_market": (
        "discount_pct", "contract_months", "billing_frequency", "payment_terms_days",
        "support_level", "price_increase_cap_pct", "free_months", "sla_uptime_pct",
        "data_residency",
    ),
    "enterprise": (
        "discount_pct", "uncapped_liability", "liability_cap_multiple", "payment_terms_days",
        "contract_months", "support_level", "price_increase_cap_pct", "free_months",
        "termination_for_convenience", "sla_uptime_pct", "data_residency", "billing_frequency",
    ),
}  # fmt: skip

# --- the tables, in the order their rows are written (foreign keys first) ------------------

COLUMNS: dict[Table, tuple[str, ...]] = {
    Deal.__table__: (  # type: ignore[dict-item]
        "id", "external_id", "name", "region", "segment", "product_line", "team", "currency",
        "amount", "stage", "close_date", "owner_rep", "value_position", "extra_attributes",
        "terms", "playbook_key", "status", "lock_version", "last_verdict",
        "last_variance_score", "last_checked_at", "review_version_id", "approval_round",
        "submitted_at", "checked_playbook", "checked_version", "variance_micro", "created_at",
        "updated_at", "zero_terms",
    ),
    DealCheck.__table__: (  # type: ignore[dict-item]
        "id", "deal_id", "playbook_version_id", "playbook_key", "playbook_version", "verdict",
        "variance_score", "terms", "attributes", "result", "checked_by", "created_at",
        "updated_at",
    ),
    DealTermCheck.__table__: (  # type: ignore[dict-item]
        "deal_id", "term_key", "status", "variance_ratio_micro", "created_at", "updated_at",
        "region", "segment", "team", "owner_rep", "playbook_key", "playbook_version", "checked_at",
    ),
    ApprovalRequest.__table__: (  # type: ignore[dict-item]
        "id", "deal_id", "round", "check_id", "playbook_version_id", "playbook_key",
        "playbook_version", "group", "chain_group", "step", "terms", "status", "lock_version",
        "submitted_by", "opened_at", "due_at", "remind_at", "reminded_at", "escalated_at",
        "escalation_level", "decided_at", "decided_by", "on_behalf_of", "admin_override",
        "reason", "decided_values", "counter_terms", "counter_accepted_at", "first_opened_at", "cycle_seconds",
        "within_sla", "created_at", "updated_at", "region", "segment", "team", "owner_rep",
    ),
    Outcome.__table__: (  # type: ignore[dict-item]
        "id", "deal_id", "won", "closed_at", "close_date", "final_terms", "source",
        "recorded_by", "loss_reason", "trades", "playbook_key", "playbook_version", "amount",
        "amount_cents", "verdict", "variance_micro", "cost", "cost_cents", "created_at",
        "updated_at", "region", "segment", "team", "owner_rep", "conceded_terms",
        "missed_targets", "currency", "checked_on",
    ),
    OutcomeTerm.__table__: (  # type: ignore[dict-item]
        "id", "outcome_id", "deal_id", "term_key", "kind", "unit", "opening", "target", "final",
        "walk_away", "final_micro", "status", "variance_ratio_micro", "conceded",
        "conceded_share_micro", "held", "traded", "gets", "cost", "cost_cents", "created_at",
        "updated_at", "region", "segment", "team", "owner_rep", "playbook_key",
        "playbook_version", "close_date", "won", "amount_cents", "deal_variance_micro",
        "currency",
    ),
    AfterActionReview.__table__: (  # type: ignore[dict-item]
        "id", "deal_id", "instrumental", "process", "relationship", "self_score", "note",
        "filed_by", "created_at", "updated_at", "region", "segment", "team", "owner_rep",
        "playbook_key", "playbook_version", "close_date",
    ),
}  # fmt: skip
TABLES = tuple(COLUMNS)
DEALS, CHECKS, TERM_CHECKS, REQUESTS, OUTCOMES, OUTCOME_TERMS, REVIEWS = range(len(TABLES))


@dataclass
class Rows:
    """One chunk's rows per table, as tuples in `COLUMNS` order."""

    by_table: list[list[tuple[Any, ...]]] = field(default_factory=lambda: [[] for _ in TABLES])

    def add(self, table: int, row: tuple[Any, ...]) -> None:
        self.by_table[table].append(row)


@dataclass
class Report:
    deals: int = 0
    checks: int = 0
    approvals: int = 0
    outcomes: int = 0
    reviews: int = 0
    rep_profiles: int = 0
    seconds: float = 0.0
    verdicts: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.deals / self.seconds if self.seconds else 0.0


# --- the timeline and the playbooks ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    as_of: datetime
    start: datetime
    v1_published: datetime
    v2_published: datetime

    @classmethod
    def ending(cls, as_of: date) -> Timeline:
        end = datetime.combine(as_of, dtime(0, 0), tzinfo=UTC)
        start = end - timedelta(days=HISTORY_DAYS)
        return cls(end, start, start - timedelta(days=30), start + timedelta(days=V2_AFTER_DAYS))


def _demo_document() -> PlaybookDocument:
    text_ = resources.files("governance.demo").joinpath("standard.yaml").read_text("utf-8")
    return formats.parse_text(text_, "application/yaml")


def version_two(doc: PlaybookDocument) -> PlaybookDocument:
    """Version 2 of the standard playbook: reps may agree less discount alone (15 → 12)."""
    raw = playbook_service.document_json(doc)
    for term in raw["terms"]:
        if term["key"] == "discount_pct":
            term["band"]["high"] = V2_DISCOUNT_HIGH
    raw["description"] = (
        (raw.get("description") or "").strip()
        + f" Version 2: the discount reps may agree alone drops from 15 to {V2_DISCOUNT_HIGH} "
        "points, after a year of data showed most deals closing well inside it."
    )
    return playbook_service.load_document(raw)


def prepare_playbooks(session: Session, timeline: Timeline) -> tuple[int, int]:
    """Publish version 2 of the standard playbook through the service (sign-off included) and
    date both versions on the timeline; returns the two version ids."""
    v1_doc = _demo_document()
    v2_doc = version_two(v1_doc)
    v1_hash = playbook_service.document_hash(playbook_service.document_json(v1_doc))
    v2_hash = playbook_service.document_hash(playbook_service.document_json(v2_doc))
    playbook = session.scalar(select(Playbook).where(Playbook.key == PLAYBOOK))
    if playbook is None:
        raise Conflict(f"load the {PLAYBOOK!r} demo playbook first")
    versions = list(
        session.scalars(
            select(PlaybookVersion)
            .where(PlaybookVersion.playbook_id == playbook.id)
            .order_by(PlaybookVersion.number)
        )
    )
    hashes = [v.document_hash for v in versions]
    if hashes == [v1_hash]:
        playbook_service.import_document(session, SYSTEM, v2_doc, publish_now=True)
        session.flush()
        versions = list(
            session.scalars(
                select(PlaybookVersion)
                .where(PlaybookVersion.playbook_id == playbook.id)
                .order_by(PlaybookVersion.number)
            )
        )
    elif hashes != [v1_hash, v2_hash]:
        raise Conflict(
            f"playbook {PLAYBOOK!r} has versions other than the demo's; generate into a fresh "
            "database"
        )
    v1, v2 = versions
    # Dated on the generated timeline, so deals checked before version 2 went live used 1.
    for version, published, superseded in (
        (v1, timeline.v1_published, timeline.v2_published),
        (v2, timeline.v2_published, None),
    ):
        drafted = published - timedelta(days=21)
        version.created_at = drafted
        version.published_at = published
        version.superseded_at = superseded
        version.updated_at = superseded or published
        for signoff in session.scalars(select(Signoff).where(Signoff.version_id == version.id)):
            signoff.created_at = signoff.updated_at = published - timedelta(days=2)
    playbook.created_at = v1.created_at
    playbook.updated_at = timeline.v2_published
    session.flush()
    return v1.id, v2.id


def ensure_no_deals(session: Session) -> None:
    """Generated ids start at 1: refuse a database that has deals already."""
    if session.scalar(select(Deal.id).limit(1)) is not None:
        raise Conflict("the database already has deals; generate into a fresh database")


def ensure_reps(session: Session, reps: Sequence[Rep], at: datetime) -> int:
    """Rep profiles for the generated reps (existing profiles are left as they are)."""
    existing = set(session.scalars(select(RepProfile.rep)))
    rows = [
        {
            "rep": r.rep,
            "name": r.name,
            "team": r.team.name,
            "region": r.team.region,
            "style": r.style,
            "lock_version": 1,
            "created_at": at,
            "updated_at": at,
        }
        for r in reps
        if r.rep not in existing
    ]
    if rows:
        session.execute(insert(RepProfile), rows)
    return len(rows)


# --- one deal -------------------------------------------------------------------------------


def _json(value: TermValue | None) -> Any:
    return number(value) if isinstance(value, Decimal) else value


def _stored(value: TermValue) -> Any:
    """A term as deals keep it: whole numbers as JSON numbers, others as decimal strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else number(value)
    return value


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _same(value: Any) -> Any:
    return value


def _half(value: float) -> Decimal:
    return Decimal(round(value * 2)) / 2


def _weighted(rng: random.Random, options: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(options, weights)[0]


class Generator:
    """Builds the rows of chunks of deals; pure apart from the random draws."""

    def __init__(
        self,
        seed: int,
        timeline: Timeline,
        v1: Published,
        v2: Published,
        reps: Sequence[Rep],
        sla_hours: int,
        total: int,
        *,
        bits: Mapping[str, int] | None = None,
        json_text: bool = False,
    ) -> None:
        self.bits = dict(bits or {})
        self.seed = seed
        # COPY takes JSON columns as text: encode them as the rows are built (no second pass).
        self.json: Callable[[Any], Any] = _json_text if json_text else _same
        self.timeline = timeline
        self.v1 = v1
        self.v2 = v2
        self.reps = tuple(reps)
        self.reps_by_team = {t.name: [r for r in reps if r.team is t] for t in TEAMS}
        self.sla_hours = sla_hours
        self.total = total
        self.span = (timeline.as_of - timeline.start).total_seconds()
        self.team_weights = [t.weight for t in TEAMS]

    # - terms ------------------------------------------------------------------------------

    def _terms(
        self,
        rng: random.Random,
        rep: Rep,
        segment: str,
        position: str | None,
        v2_era: bool,
    ) -> dict[str, TermValue]:
        style = STYLE_MODELS[rep.style]
        p = rng.gauss(style.propensity, style.spread)
        p += {"weak": 0.12, "strong": -0.12}.get(position or "", 0.0)
        p = min(max(p, 0.0), 1.0)
        enterprise = segment == "enterprise"
        out: dict[str, TermValue] = {}
        multi_year = rng.random() < style.multi_year + (0.15 if enterprise else 0.0)
        months = 36 if multi_year else _weighted(rng, (12, 24, 6), (0.72, 0.25, 0.03))
        out["contract_months"] = Decimal(months)
        prepay = rng.random() < style.prepay + 0.2 - (0.15 if segment == "smb" else 0.0)
        out["billing_frequency"] = (
            "annual_upfront"
            if prepay
            else _weighted(
                rng, ("semi_annual", "quarterly", "monthly"), (0.70, 0.20, 0.10 + 0.1 * p)
            )
        )
        discount = BASE_DISCOUNT[segment] + 14.0 * p + rep.team.discount_bias
        discount += 3.0 if multi_year else 0.0  # the rule allows it, and reps use it
        discount -= 1.5 if v2_era else 0.0  # the tighter band nudged reps down
        discount += rng.gauss(0.0, 3.0 + 3.0 * style.spread)
        if rng.random() < 0.012:  # the odd deal pushed past every bottom line
            discount = rng.uniform(42.0, 55.0)
        out["discount_pct"] = max(_half(discount), Decimal(0))
        out["payment_terms_days"] = Decimal(
            _weighted(
                rng, (30, 45, 60, 90), (0.70 - 0.2 * p, 0.22, 0.05 + 0.12 * p, 0.01 + 0.03 * p)
            )
        )
        out["support_level"] = _weighted(
            rng,
            ("standard", "premium", "platinum"),
            (0.62, 0.33, 0.03 + (0.08 if enterprise else 0.0)),
        )
        out["price_increase_cap_pct"] = Decimal(
            _weighted(rng, (7, 5, 3, 0), (0.66 - 0.1 * p, 0.24, 0.05 + 0.08 * p, 0.01 + 0.02 * p))
        )
        free = 0
        if rng.random() < style.free_months * (0.5 + p):
            free = _weighted(rng, (1, 2, 3), (0.70, 0.22, 0.08))
        out["free_months"] = Decimal(free)
        out["sla_uptime_pct"] = Decimal(
            _weighted(
                rng,
                ("99.5", "99.9", "99.95", "99.99"),
                (0.55, 0.33, 0.10 if enterprise else 0.03, 0.02 if enterprise else 0.005),
            )
        )
        emea = rep.team.region == "EMEA"
        out["data_residency"] = _weighted(
            rng,
            ("none", "eu_or_us", "customer_region", "on_premises"),
            (0.25 if emea else 0.75, 0.60 if emea else 0.20, 0.12 if emea else 0.045, 0.004),
        )
        out["uncapped_liability"] = rng.random() < (0.05 if enterprise else 0.01)
        out["liability_cap_multiple"] = Decimal(
            _weighted(rng, ("1", "1.5", "2", "3"), (0.70, 0.15, 0.12, 0.03))
        )
        out["termination_for_convenience"] = rng.random() < 0.04
        return {k: out[k] for k in STATED[segment]}

    # - approvals --------------------------------------------------------------------------

    def _sla(self, published: Published, group: str) -> int:
        return published.compiled.document.approval_sla_hours.get(group, self.sla_hours)

    def _approvals(
        self,
        rng: random.Random,
        deal_id: int,
        rep: Rep,
        submitted: datetime,
        result: CheckResult,
        body: dict[str, Any],
        published: Published,
    ) -> tuple[list[dict[str, Any]], str, datetime | None, dict[str, TermValue]]:
        """Requests per (group, step) of the check, decided with realistic delays.

        Returns the requests, the deal's status at `as_of`, when the review ended (None while
        in review) and the values an approver countered with.
        """
        as_of = self.timeline.as_of
        by_key = {t["key"]: t for t in body["terms"]}
        ratios = {t.key: t.variance_ratio for t in result.terms}
        fired = {t.key: t.rules for t in result.terms}
        requests: list[dict[str, Any]] = []
        for k, step in enumerate(sorted(result.steps, key=lambda s: (s.step, s.group))):
            requests.append({"k": k, "group": step.group, "step": step.step, "terms": step.terms})
        # Decide in step order: a step opens once every earlier step of its terms approved.
        for req in requests:
            earlier = [
                r
                for r in requests
                if r["step"] < req["step"] and set(r["terms"]) & set(req["terms"])
            ]
            opened = max([submitted] + [r["decided"] for r in earlier])
            group = req["group"]
            hours = self._sla(published, group)
            due = opened + timedelta(hours=hours)
            req["first"] = (opened, due, opened + timedelta(hours=hours) / 2)
            req["escalated"] = req["target"] = req["second"] = None
            decided = opened + timedelta(
                hours=rng.lognormvariate(math.log(DECISION_HOURS[group]), 1.0)
            )
            if decided > due:
                # The SLA sweep (every few minutes) escalates it along the deal's own ladder:
                # a new holder, with its own SLA from the escalation on.
                escalated = due + timedelta(minutes=rng.randint(0, 5))
                req["escalated"] = escalated
                target = self._next_group(published, req, fired)
                if target is not None:
                    target_hours = self._sla(published, target)
                    req["target"] = target
                    req["second"] = (
                        escalated,
                        escalated + timedelta(hours=target_hours),
                        escalated + timedelta(hours=target_hours) / 2,
                    )
                    decided = escalated + timedelta(hours=rng.lognormvariate(math.log(3.0), 0.8))
            req["decided"] = decided
            req["remind_jitter"] = timedelta(minutes=rng.randint(0, 5))
            worst = float(min(max(ratios[key] for key in req["terms"]), Decimal(1)))
            numeric = any(
                isinstance(published.compiled.document.term(key), NumberTerm)
                for key in req["terms"]
            )
            draw = rng.random()
            reject = 0.02 + 0.07 * worst
            counter_rate = 0.03 + 0.09 * worst if numeric else 0.0
            req["decision"] = (
                "rejected"
                if draw < reject
                else "countered"
                if draw < reject + counter_rate
                else "approved"
            )
        # The first rejection or counter ends the review; what was still open is withdrawn.
        enders = sorted(
            (r for r in requests if r["decision"] != "approved"),
            key=lambda r: (r["decided"], r["k"]),
        )
        stopper = enders[0] if enders else None
        stop = stopper["decided"] if stopper else None
        rows: list[dict[str, Any]] = []
        countered: dict[str, TermValue] = {}
        for req in requests:
            # Nothing happens to this request after `cutoff`: today, or the end of the review.
            cutoff = as_of if stop is None else min(as_of, stop)
            row: dict[str, Any] = {
                "id": deal_id * ID_STRIDE + req["k"],
                "group": req["group"],
                "chain_group": req["group"],
                "step": req["step"],
                "terms": [
                    {
                        **{k: v for k, v in by_key[key].items() if k != "rules"},
                        "justification": self._justification(rng, key),
                    }
                    for key in req["terms"]
                ],
                "status": "waiting",
                "opened_at": None, "due_at": None, "remind_at": None, "reminded_at": None,
                "escalated_at": None, "escalation_level": 0, "decided_at": None,
                "decided_by": None, "reason": None, "decided_values": None,
                "counter_terms": None, "first_opened_at": None, "cycle_seconds": None,
                "within_sla": None,
                "created_at": submitted,
            }  # fmt: skip
            opened, due, remind = req["first"]
            is_open = opened <= cutoff and (stop is None or opened < stop or req is stopper)
            decided = req["decided"]
            if is_open:
                row["first_opened_at"] = opened
                escalated = req["escalated"]
                if escalated is not None and escalated <= cutoff:
                    row["escalated_at"] = escalated
                    if req["target"] is not None:
                        row["group"] = req["target"]
                        row["escalation_level"] = 1
                        opened, due, remind = req["second"]
                reminded = remind + req["remind_jitter"]
                row.update(status="pending", opened_at=opened, due_at=due, remind_at=remind)
                if reminded < decided and reminded <= cutoff:
                    row["reminded_at"] = reminded
            if is_open and decided <= cutoff:
                status = req["decision"]
                row.update(
                    status=status,
                    decided_at=decided,
                    decided_by=self._approver(rng, row["group"]),
                    decided_values={e["key"]: e["value"] for e in row["terms"]},
                    cycle_seconds=max(0, int((decided - row["first_opened_at"]).total_seconds())),
                    within_sla=row["escalation_level"] == 0 and decided <= row["due_at"],
                )
                if status == "rejected":
                    row["reason"] = "Beyond what the margin on this account allows."
                elif status == "countered":
                    counter = self._counter(result, req["terms"], published)
                    countered.update(counter)
                    row["counter_terms"] = {k: _json(v) for k, v in counter.items()}
                    row["reason"] = "We can meet you halfway on this."
                elif rng.random() < 0.3:
                    row["reason"] = "Fine given the account's potential."
            elif stopper is not None and stop is not None and stop <= as_of:
                row.update(
                    status="withdrawn",
                    decided_at=stop,
                    decided_by=self._approver(rng, stopper["group"]),
                    reason=f"deal {stopper['decision']} by {stopper['group']}",
                )
            rows.append(row)
        if stopper is not None and stop is not None and stop <= as_of:
            return rows, str(stopper["decision"]), stop, countered
        if all(r["status"] == "approved" for r in rows):
            return rows, "approved", max(r["decided_at"] for r in rows), countered
        return rows, "in_review", None, countered

    def _next_group(
        self, published: Published, req: dict[str, Any], fired: Mapping[str, tuple[str, ...]]
    ) -> str | None:
        """Where the sweep escalates: the next group on the deal's own ladder (see
        `approvals.service._next_group`)."""
        for key in req["terms"]:
            ladder = list(dict.fromkeys(published.compiled.ladder(key, fired.get(key, ()))))
            if req["group"] in ladder:
                for group in ladder[ladder.index(req["group"]) + 1 :]:
                    if group != req["group"]:
                        return group
        return None

    @staticmethod
    def _counter(
        result: CheckResult, keys: Iterable[str], published: Published
    ) -> dict[str, TermValue]:
        """An approver's counter: number terms halfway back to the band edge."""
        out: dict[str, TermValue] = {}
        wanted = set(keys)
        for term in result.terms:
            if term.key not in wanted or not isinstance(term.value, Decimal):
                continue
            doc_term = published.compiled.document.term(term.key)
            assert isinstance(doc_term, NumberTerm)
            lower = doc_term.direction.value == "lower_is_better"
            edge = term.band.high if lower else term.band.low
            if edge is None:
                continue
            out[term.key] = _half(float(term.value + edge) / 2)
        return out

    @staticmethod
    def _approver(rng: random.Random, group: str) -> str:
        return rng.choice(APPROVERS.get(group, (f"{group}.lead",)))

    @staticmethod
    def _justification(rng: random.Random, key: str) -> str | None:
        if rng.random() < 0.5:
            return None
        return rng.choice(
            (
                "Competitive displacement; the incumbent offered more.",
                "Strategic logo for the region.",
                "Customer's procurement policy requires it.",
                "Expansion expected within the year.",
            )
        )

    # - a chunk ----------------------------------------------------------------------------

    def chunk(self, index: int, first: int, count: int) -> tuple[Rows, Report]:
        """Rows for deals `first`..`first + count - 1` (1-based numbers, which are their ids)."""
        rng = random.Random(f"governance-demo:{self.seed}:{index}")
        rows = Rows()
        report = Report()
        for n in range(first, first + count):
            self._deal(rng, n, rows, report)
        return rows, report

    def _deal(self, rng: random.Random, n: int, rows: Rows, report: Report) -> None:
        j = self.json
        tl = self.timeline
        created = tl.start + timedelta(seconds=(n - 1 + rng.random()) * self.span / self.total)
        team = _weighted(rng, TEAMS, self.team_weights)
        rep = rng.choice(self.reps_by_team[team.name])
        segment = _weighted(rng, SEGMENTS, SEGMENT_WEIGHTS)
        country = rng.choice(team.countries)
        if team.name == "DACH" and rng.random() < DACH_FRENCH_SHARE:
            country = "FR"
        median, sigma = AMOUNT[segment]
        amount = Decimal(max(1, round(rng.lognormvariate(math.log(median), sigma) / 100)) * 100)
        position = _weighted(rng, ("strong", "parity", "weak", None), (0.22, 0.45, 0.23, 0.10))
        if rep.style == "game_changer" and position == "parity" and rng.random() < 0.4:
            position = "strong"  # they reframe the value before talking price
        product = rng.choice(PRODUCT_LINES)
        checked = created + timedelta(minutes=rng.randint(5, 3 * 24 * 60))
        checked = min(checked, tl.as_of - timedelta(minutes=1))
        published = self.v1 if checked < tl.v2_published else self.v2
        terms = self._terms(rng, rep, segment, position, published is self.v2)
        cycle = rng.lognormvariate(math.log(CYCLE_DAYS[segment]), 0.5)
        close = (checked + timedelta(days=cycle)).date()

        attributes: dict[str, Any] = {
            "region": team.region,
            "segment": segment,
            "product_line": product,
            "team": team.name,
            "currency": team.currency,
            "amount": amount,
            "owner_rep": rep.rep,
        }
        if position is not None:
            attributes["value_position"] = position
        attributes["country"] = country
        result = evaluate(
            published.compiled, terms, {**attributes, "close_date": close.isoformat()}
        )
        body = check_body(published, result)
        verdict = result.verdict
        report.verdicts[verdict.value] = report.verdicts.get(verdict.value, 0) + 1

        status = "draft"
        submitted: datetime | None = None
        review_version: int | None = None
        ended: datetime | None = checked
        countered: dict[str, TermValue] = {}
        requests: list[dict[str, Any]] = []
        if verdict is Verdict.needs_approval:
            submitted = checked + timedelta(minutes=rng.randint(2, 240))
            if submitted >= tl.as_of:
                submitted = None
            else:
                requests, status, ended, countered = self._approvals(
                    rng, n, rep, submitted, result, body, published
                )
                review_version = published.version_id
        elif verdict is Verdict.auto_approved and (close < tl.as_of.date() or rng.random() < 0.5):
            submitted = checked + timedelta(minutes=rng.randint(1, 60))
            if submitted < tl.as_of:
                status, ended = "approved", submitted
            else:
                submitted = None
        # A deal closes after its review ends; one still in review is open.
        if ended is None or (submitted is None and verdict is Verdict.needs_approval):
            close = max(close, tl.as_of.date() + timedelta(days=rng.randint(3, 45)))
        elif close <= ended.date():
            close = ended.date() + timedelta(days=rng.randint(1, 14))
        closed = close < tl.as_of.date()
        won = False
        if closed:
            won = rng.random() < self._win_probability(segment, position, result, status)
        stage = (
            ("Closed Won" if won else "Closed Lost")
            if closed
            else _weighted(rng, ("Proposal", "Negotiation", "Contracting"), (0.4, 0.45, 0.15))
        )
        attributes["close_date"] = close.isoformat()
        attributes["stage"] = stage
        closed_at = (
            datetime.combine(close, dtime(rng.randint(8, 19), rng.randint(0, 59)), tzinfo=UTC)
            if closed
            else None
        )
        last_change = max(
            [checked, submitted or checked]
            + [r[k] for r in requests for k in ("decided_at", "escalated_at") if r[k] is not None]
            + ([closed_at] if closed_at else [])
        )
        stored_terms = {k: _stored(v) for k, v in terms.items()}
        company = f"{rng.choice(COMPANY)} {SUFFIX.get(country, 'Inc')}"
        variance = result.variance_score
        # Terms at ratio 0 are bits of `zero_terms`; the others get rows (see `DealTermCheck`).
        context = (team.region, segment, team.name, rep.rep)
        zero_terms = 0
        term_rows: list[tuple[str, str, int]] = []
        for term in result.terms:
            if term.status is Status.missing:
                continue
            ratio = to_micro(term.variance_ratio)
            bit = self.bits.get(term.key)
            if ratio == 0 and bit is not None:
                zero_terms |= 1 << bit
            else:
                term_rows.append((term.key, term.status.value, ratio))
        rows.add(
            DEALS,
            (
                n, salesforce_id_18(f"006Dm{n:010d}"), f"{company} — {product} ({segment})",
                team.region, segment, product, team.name, team.currency, amount, stage, close,
                rep.rep, position, j({"country": country}), j(stored_terms), None, status,
                1 + (status != "draft") + len(requests), verdict.value, variance, checked,
                review_version, 1, submitted, published.key, published.number,
                to_micro(variance), created, last_change, zero_terms,
            ),
        )  # fmt: skip
        # Stored compactly: the terms the deal does not state are left out of the history.
        stored_body = {**body, "terms": [t for t in body["terms"] if t["status"] != "missing"]}
        check_attributes = {
            k: (number(v) if isinstance(v, Decimal) else v) for k, v in attributes.items()
        }
        rows.add(
            CHECKS,
            (
                n, n, published.version_id, published.key, published.number, verdict.value,
                variance, j(stored_terms), j(check_attributes), j(stored_body), rep.rep, checked,
                checked,
            ),
        )  # fmt: skip
        for key, status, ratio in term_rows:
            rows.add(
                TERM_CHECKS,
                (n, key, status, ratio, checked, checked, *context, published.key,
                 published.number, checked),
            )  # fmt: skip
        for r in requests:
            rows.add(
                REQUESTS,
                (
                    r["id"], n, 1, n, published.version_id, published.key, published.number,
                    r["group"], r["chain_group"], r["step"], j(r["terms"]), r["status"],
                    1 + (r["opened_at"] is not None) + (r["decided_at"] is not None)
                    + r["escalation_level"],
                    rep.rep, r["opened_at"], r["due_at"], r["remind_at"], r["reminded_at"],
                    r["escalated_at"], r["escalation_level"], r["decided_at"], r["decided_by"],
                    None, False, r["reason"], j(r["decided_values"]), j(r["counter_terms"]), None,
                    r["first_opened_at"], r["cycle_seconds"], r["within_sla"], r["created_at"],
                    r["decided_at"] or r["escalated_at"] or r["opened_at"] or r["created_at"],
                    *context,
                ),
            )  # fmt: skip
        report.deals += 1
        report.checks += 1
        report.approvals += len(requests)
        if not closed:
            return
        assert closed_at is not None
        final = {**terms, **countered} if won and countered else terms
        engine_attrs = {**attributes}
        # A counter changed the terms the deal closed on: measure those, not the checked ones.
        figures = measure(
            published.compiled, final, engine_attrs, None if final is not terms else result
        )
        self._outcome(
            rng, n, won, closed_at, close, final, figures, amount, rep.team.currency,
            checked.date(), context, rows,
        )  # fmt: skip
        report.outcomes += 1
        if rng.random() < 0.3:
            filed = closed_at + timedelta(days=rng.randint(0, 10), hours=rng.randint(1, 8))
            if filed < tl.as_of:
                self._review(rng, n, rep, won, variance, filed, figures, close, context, rows)
                report.reviews += 1

    @staticmethod
    def _win_probability(
        segment: str, position: str | None, result: CheckResult, status: str
    ) -> float:
        """Falls with the variance score: deals that need big concessions are weak deals."""
        if result.verdict is Verdict.blocked:
            return 0.0  # no one could approve it; it was never signed as it stood
        p = WIN_BASE[segment] - 0.45 * float(min(result.variance_score, Decimal(1)))
        p += {"strong": 0.12, "weak": -0.10}.get(position or "", 0.0)
        if status == "rejected":
            p = 0.12
        elif status == "countered":
            p -= 0.08
        return min(max(p, 0.02), 0.95)

    def _outcome(
        self,
        rng: random.Random,
        n: int,
        won: bool,
        closed_at: datetime,
        close: date,
        final: Mapping[str, TermValue],
        figures: OutcomeFigures,
        amount: Decimal,
        currency: str,
        checked_on: date,
        context: tuple[str, str, str, str],
        rows: Rows,
    ) -> None:
        j = self.json
        recorded = closed_at + timedelta(minutes=rng.randint(5, 180))
        recorded = min(recorded, self.timeline.as_of)
        trades = [
            {"gave": t.key, "got": list(t.gets), "note": None, "inferred": True}
            for t in figures.terms
            if t.gets
        ]
        cost = figures.cost
        rows.add(
            OUTCOMES,
            (
                n, n, won, closed_at, close, j({k: _stored(v) for k, v in final.items()}),
                "salesforce", "salesforce-sync",
                None if won else _weighted(rng, LOSS_REASONS, LOSS_WEIGHTS), j(trades),
                figures.playbook, figures.version, amount, to_cents(amount),
                figures.verdict.value, to_micro(figures.variance_score), cost,
                None if cost is None else to_cents(cost), recorded, recorded, *context,
                sum(1 for t in figures.terms if t.conceded_share),
                sum(1 for t in figures.terms if t.held is False), currency, checked_on,
            ),
        )  # fmt: skip
        for k, t in enumerate(figures.terms):
            rows.add(
                OUTCOME_TERMS,
                (
                    n * ID_STRIDE + k, n, n, t.key, t.kind, t.unit, j(_json(t.opening)),
                    j(_json(t.target)), j(_json(t.final)), j(_json(t.walk_away)),
                    to_micro(t.final) if isinstance(t.final, Decimal) else None, t.status.value,
                    to_micro(t.variance_ratio), t.conceded,
                    None if t.conceded_share is None else to_micro(t.conceded_share), t.held,
                    bool(t.gets), j(list(t.gets)), t.cost,
                    None if t.cost is None else to_cents(t.cost), recorded, recorded, *context,
                    figures.playbook, figures.version, close, won, to_cents(amount),
                    to_micro(figures.variance_score), currency,
                ),
            )  # fmt: skip

    @staticmethod
    def _review(
        rng: random.Random,
        n: int,
        rep: Rep,
        won: bool,
        variance: Decimal,
        filed: datetime,
        figures: OutcomeFigures,
        close: date,
        context: tuple[str, str, str, str],
        rows: Rows,
    ) -> None:
        def score(mean: float) -> int:
            return min(7, max(1, round(rng.gauss(mean, 1.1))))

        instrumental = score((5.3 if won else 3.2) - 1.5 * float(min(variance, Decimal(1))))
        note = (
            rng.choice(
                (
                    "Should have asked for the multi-year commitment earlier.",
                    "Procurement pushed hard on payment terms.",
                    "Good preparation paid off.",
                    "Conceded discount too early.",
                    "Relationship with the champion carried it.",
                )
            )
            if rng.random() < 0.4
            else None
        )
        rows.add(
            REVIEWS,
            (
                n, n, instrumental, score(4.8), score(5.2 if won else 4.4),
                score(5.0 if won else 4.0), note, rep.rep, filed, filed, *context,
                figures.playbook, figures.version, close,
            ),
        )  # fmt: skip


# --- writing ------------------------------------------------------------------------------


def _write_postgresql(db: Database, rows: Rows) -> None:
    """COPY each table's rows (JSON already encoded), in the batch's one unit of work."""
    with db.unit_of_work() as session:
        driver = session.connection().connection.driver_connection
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            for table, batch in zip(TABLES, rows.by_table, strict=True):
                if not batch:
                    continue
                columns = ", ".join(f'"{c}"' for c in COLUMNS[table])
                with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                    for row in batch:
                        copy.write_row(row)


def _write_other(db: Database, rows: Rows) -> None:
    with db.engine.begin() as connection:
        for table, batch in zip(TABLES, rows.by_table, strict=True):
            if batch:
                names = COLUMNS[table]
                connection.execute(insert(table), [dict(zip(names, r, strict=True)) for r in batch])


def _advance_sequences(db: Database) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the generated rows."""
    if db.engine.dialect.name != "postgresql":
        return
    with db.engine.begin() as connection:
        for table in TABLES:
            if "id" not in COLUMNS[table]:
                continue
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                    f'GREATEST((SELECT max(id) FROM "{table.name}"), 1))'
                )
            )


def _tally(
    total: Report, report: Report, started: float, progress: Callable[[Report], None] | None
) -> None:
    total.deals += report.deals
    total.checks += report.checks
    total.approvals += report.approvals
    total.outcomes += report.outcomes
    total.reviews += report.reviews
    for verdict, count in report.verdicts.items():
        total.verdicts[verdict] = total.verdicts.get(verdict, 0) + count
    total.seconds = time.perf_counter() - started
    if progress is not None:
        progress(total)


def generate(
    db: Database,
    deals: int,
    *,
    seed: int = 0,
    as_of: date | None = None,
    sla_hours: int = 24,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Generate `deals` deals of history into an empty deals table (the demo playbook loaded)."""
    as_of = as_of or datetime.now(UTC).date()
    timeline = Timeline.ending(as_of)
    reps = make_reps()
    started = time.perf_counter()
    with db.unit_of_work() as session:
        ensure_no_deals(session)
        v1_id, v2_id = prepare_playbooks(session, timeline)
        profiles = ensure_reps(session, reps, timeline.start - timedelta(days=60))
        # The `zero_terms` bits, assigned (in key order) before any deal uses them.
        bits = DealRepository(session).term_bits(sorted(t.key for t in _demo_document().terms))
    postgresql = db.engine.dialect.name == "postgresql"
    write = _write_postgresql if postgresql else _write_other
    registry = PlaybookRegistry(db, 0)
    generator = Generator(
        seed,
        timeline,
        registry.version(v1_id),
        registry.version(v2_id),
        reps,
        sla_hours,
        deals,
        bits=bits,
        json_text=postgresql,
    )
    total = Report(rep_profiles=profiles)
    # One writer thread: the database works on one chunk while this thread builds the next
    # (the writer mostly waits on the server, so it hardly competes for the interpreter).
    pending: queue.Queue[Rows | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def writer() -> None:
        while (rows := pending.get()) is not None:
            if failure:
                continue  # drain, so the producer never blocks on a dead writer
            try:
                write(db, rows)
            except BaseException as exc:  # re-raised in the caller's thread below
                failure.append(exc)

    thread = threading.Thread(target=writer, name="demo-writer", daemon=True)
    thread.start()
    try:
        for index, first in enumerate(range(1, deals + 1, CHUNK)):
            if failure:
                break
            rows, report = generator.chunk(index, first, min(CHUNK, deals - first + 1))
            pending.put(rows)
            _tally(total, report, started, progress)
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]
    _advance_sequences(db)
    total.seconds = time.perf_counter() - started
    return total
