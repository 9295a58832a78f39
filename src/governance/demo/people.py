"""The organisation the sample history happens in: teams, reps of four negotiation styles, and
the approvers who decide their exceptions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from governance.demo import repository


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


def ensure_reps(session: Session, reps: Sequence[Rep], at: datetime) -> int:
    """Rep profiles for the generated reps (existing profiles are left as they are)."""
    existing = repository.rep_names(session)
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
        repository.add_reps(session, rows)
    return len(rows)
