"""Choice terms (CompiledChoice): one option from a list, each option's result known ahead."""

from __future__ import annotations

from decimal import Decimal

from governance.engine.document import ChoiceTerm
from governance.engine.results import EffectiveBand, Status, TermResult, TermValue
from governance.engine.terms import ONE, ZERO, CompiledTerm

# Short status names, as in the other term modules (each enum member lookup costs ~200 ns).
_WITHIN, _BETTER, _EXCEPTION = Status.within, Status.better, Status.exception
_BLOCKED = Status.blocked


class CompiledChoice(CompiledTerm):
    """A choice term: every option's result is known ahead; rules can only swap approvers."""

    __slots__ = ("outcomes", "plain_band", "ranks")

    def __init__(self, term: ChoiceTerm) -> None:
        super().__init__(
            term.key, "choice", term.owner, term.priority, [t.approver for t in term.tiers]
        )
        rank = {o: i for i, o in enumerate(term.options)}
        self.ranks = {o: Decimal(i) for o, i in rank.items()}
        best_allowed = min(rank[o] for o in term.band.allowed)
        steps = Decimal(len(term.tiers) + 1)
        self.outcomes: dict[str, tuple[Status, Decimal, Decimal, int | None]] = {}
        for option in term.options:
            if option in term.band.allowed:
                self.outcomes[option] = (_WITHIN, ZERO, ZERO, None)
            elif rank[option] < best_allowed:
                self.outcomes[option] = (_BETTER, ZERO, ZERO, None)
            else:
                reached = next(
                    (i + 1 for i, t in enumerate(term.tiers) if option in t.options), None
                )
                if reached is None:
                    self.outcomes[option] = (_BLOCKED, steps, ONE, None)
                else:
                    count = Decimal(reached)
                    self.outcomes[option] = (_EXCEPTION, count, count / steps, reached)
        self.plain_band = EffectiveBand(allowed=tuple(term.band.allowed))
        self.precomputed = {o: self._result(o, None, ()) for o in term.options}
        self._finish()

    def band(self, shift: Decimal) -> EffectiveBand:
        return self.plain_band

    def parse(self, raw: object) -> TermValue:
        if not isinstance(raw, str) or raw not in self.outcomes:
            raise ValueError(
                f"{raw!r} is not an option of {self.key}; options are {list(self.outcomes)}"
            )
        return raw

    def severity(self, value: TermValue) -> Decimal:
        return self.ranks[str(self.parse(value))]

    def _result(
        self, option: str, overrides: list[tuple[int | None, str]] | None, rules: tuple[str, ...]
    ) -> TermResult:
        status, variance, ratio, tier = self.outcomes[option]
        approvers = self._chain(tier, overrides) if tier is not None else ()
        return TermResult(
            self.key,
            "choice",
            self.owner,
            self.priority,
            option,
            status,
            variance,
            ratio,
            tier,
            approvers,
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
            return self._result(value, overrides, rules)  # type: ignore[arg-type]
        assert self.precomputed is not None
        return self.precomputed[value]
