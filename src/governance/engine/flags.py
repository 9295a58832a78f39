"""Flag terms (CompiledFlag): a true/false term with a preferred value."""

from __future__ import annotations

from decimal import Decimal

from governance.engine.document import FlagTerm
from governance.engine.results import EffectiveBand, Status, TermResult, TermValue
from governance.engine.terms import ONE, ZERO, CompiledTerm

# Short status names, as in the other term modules (each enum member lookup costs ~200 ns).
_WITHIN, _EXCEPTION, _BLOCKED = Status.within, Status.exception, Status.blocked


class CompiledFlag(CompiledTerm):
    """A flag term: within at its preferred value, otherwise every tier in order (or blocked)."""

    __slots__ = ("plain_band", "preferred")

    def __init__(self, term: FlagTerm) -> None:
        super().__init__(
            term.key, "flag", term.owner, term.priority, [t.approver for t in term.tiers]
        )
        self.preferred = term.preferred
        self.plain_band = EffectiveBand(preferred=term.preferred)
        self.precomputed = {v: self._result(v, None, ()) for v in (True, False)}
        self._finish()

    def band(self, shift: Decimal) -> EffectiveBand:
        return self.plain_band

    def parse(self, raw: object) -> TermValue:
        if raw is True or raw is False:
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(f"{self.key} is a flag term; {raw!r} is not true or false")

    def severity(self, value: TermValue) -> Decimal:
        return ZERO if self.parse(value) == self.preferred else ONE

    def _result(
        self, value: bool, overrides: list[tuple[int | None, str]] | None, rules: tuple[str, ...]
    ) -> TermResult:
        if value == self.preferred:
            return TermResult(
                self.key,
                "flag",
                self.owner,
                self.priority,
                value,
                _WITHIN,
                ZERO,
                ZERO,
                None,
                (),
                self.plain_band,
                rules,
            )
        tiers = len(self.approver_list)
        steps = Decimal(tiers + 1)
        if not tiers:
            return TermResult(
                self.key,
                "flag",
                self.owner,
                self.priority,
                value,
                _BLOCKED,
                steps,
                ONE,
                None,
                (),
                self.plain_band,
                rules,
            )
        count = Decimal(tiers)
        return TermResult(
            self.key,
            "flag",
            self.owner,
            self.priority,
            value,
            _EXCEPTION,
            count,
            count / steps,
            tiers,
            self._chain(tiers, overrides),
            self.plain_band,
            rules,
        )

    def evaluate(
        self,
        value: TermValue,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        if rules:
            return self._result(bool(value), overrides, rules)
        assert self.precomputed is not None
        return self.precomputed[bool(value)]
