"""The CompiledTerm base every term kind shares: approver chains and missing-term results."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from governance.engine.results import EffectiveBand, Status, TermResult, TermValue

# Imported by every engine module rather than redefined: the evaluator tells "no rule shifted
# this term" by identity (`shift is ZERO`), which is only safe while there is one ZERO.
ZERO = Decimal(0)
ONE = Decimal(1)

# Enum member lookups cost ~200 ns each on Python 3.11; the hot path uses this name.
_MISSING = Status.missing

# NamedTuple's generated constructor handles keywords and is ~2x slower than this.
_new = tuple.__new__


def dedupe(groups: Sequence[str]) -> tuple[str, ...]:
    """The approver groups in order, each once (a group on two tiers approves once)."""
    return tuple(dict.fromkeys(groups))


class CompiledTerm(ABC):
    """Base for compiled terms; subclasses evaluate one value."""

    __slots__ = (
        "approver_list",
        "key",
        "kind",
        "missing_result",
        "owner",
        "precomputed",
        "priority",
        "weight",
    )

    def __init__(
        self, key: str, kind: str, owner: str, priority: int, approvers: list[str]
    ) -> None:
        self.key = key
        self.kind = kind
        self.owner = owner
        self.priority = priority
        self.weight = ONE / Decimal(priority)
        self.approver_list = approvers
        # Results per value for terms whose outcome never depends on the value's size (choices
        # and flags); None for numbers.
        self.precomputed: dict[Any, TermResult] | None = None

    def _finish(self) -> None:
        """Prebuild what subclasses can only build once their own fields are set."""
        self.missing_result = self.missing(())

    def tier_approvers(self, overrides: list[tuple[int | None, str]] | None) -> list[str]:
        """The group that approves each tier, after fired rules' replacements (in the order
        they fired: `(tier, group)`, tier None for every tier)."""
        approvers = list(self.approver_list)
        if overrides:
            for tier, group in overrides:
                if tier is None:
                    approvers = [group] * len(approvers)
                else:
                    approvers[tier - 1] = group
        return approvers

    def _chain(
        self, reached: int, overrides: list[tuple[int | None, str]] | None
    ) -> tuple[str, ...]:
        return dedupe(self.tier_approvers(overrides)[:reached])

    def missing(self, rules: tuple[str, ...], shift: Decimal = ZERO) -> TermResult:
        """A term the deal does not state, with its band after any rules that fired."""
        return _new(
            TermResult,
            (
                self.key,
                self.kind,
                self.owner,
                self.priority,
                None,
                _MISSING,
                ZERO,
                ZERO,
                None,
                (),
                self.band(shift),
                rules,
            ),
        )

    @abstractmethod
    def band(self, shift: Decimal) -> EffectiveBand:
        """Implemented by each kind."""

    @abstractmethod
    def parse(self, raw: object) -> TermValue:
        """Implemented by each kind."""

    @abstractmethod
    def evaluate(
        self,
        value: TermValue,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        """Implemented by each kind."""

    @abstractmethod
    def severity(self, value: TermValue) -> Decimal:
        """How bad `value` is for us: larger is worse, comparable only within this term."""

    def no_worse(self, value: TermValue, than: TermValue) -> bool:
        """True when `value` is at least as good for us as `than` (smart re-approval)."""
        return self.severity(value) <= self.severity(than)
