"""Number terms (CompiledNumber) and the decimal checks every deal number passes."""

from __future__ import annotations

from decimal import Decimal

from governance.engine.document import Direction, NumberTerm
from governance.engine.results import EffectiveBand, Status, TermResult, TermValue
from governance.engine.terms import ONE, ZERO, CompiledTerm, dedupe
from governance.number_text import HOW, NotANumber, OutOfRange, parse_decimal, to_decimal

__all__ = ["CompiledNumber", "to_decimal"]

# Deal numbers must be below 10**MAX_DIGITS in size. Anything larger is not a commercial term,
# and refusing it here keeps every later subtraction and weighted sum far from Decimal's exponent
# limit, so `evaluate` can never raise Overflow for a value `parse_terms` accepted.
MAX_DIGITS = 18
# ... and have at most this many decimal places ("1e-999999999" would be a billion-digit text).
MAX_PLACES = 12
PLACES_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)

# Enum member lookups cost ~200 ns each on Python 3.11; the hot path uses these names.
_WITHIN, _BETTER, _EXCEPTION = Status.within, Status.better, Status.exception
_BLOCKED = Status.blocked

# NamedTuple's generated constructor handles keywords and is ~2x slower than this.
_new = tuple.__new__

# (shift, edge, walk-away, tier limits, span, band) of a number term after a shift.
ShiftedGeometry = tuple[Decimal, Decimal, Decimal, tuple[Decimal, ...], Decimal, EffectiveBand]
_MAX_SHIFTED = 64


class CompiledNumber(CompiledTerm):
    """A number term in normalised space: x = sign·v, so larger x is always worse for us."""

    __slots__ = (
        "chains",
        "edge",
        "edge_unit",
        "good",
        "good_unit",
        "limits",
        "lower",
        "plain_band",
        "plain_edge_value",
        "shifted",
        "span",
        "walk",
    )

    def __init__(self, term: NumberTerm) -> None:
        super().__init__(
            term.key, "number", term.owner, term.priority, [t.approver for t in term.tiers]
        )
        self.lower = term.direction is Direction.lower_is_better
        sign = 1 if self.lower else -1
        self.good = sign * (term.band.low if self.lower else term.band.high)
        self.edge = sign * term.band_edge()
        self.walk = sign * term.effective_walk_away()
        self.limits = tuple(sign * t.limit for t in term.tiers)
        self.span = self.walk - self.edge
        self.chains = tuple(dedupe(self.approver_list[: i + 1]) for i in range(len(self.limits)))
        self.plain_band = self._band(self.good, self.edge, self.walk)
        # The band's edges in the term's own unit, so the evaluator can tell "inside the band"
        # without negating the value of a higher-is-better term.
        self.edge_unit = term.band_edge()
        self.good_unit = term.band.low if self.lower else term.band.high
        self.plain_edge_value = self.edge_value(ZERO)
        # Shifted geometry per combination of fired rules (see `_geometry`).
        self.shifted: dict[tuple[str, ...], ShiftedGeometry] = {}
        self._finish()

    def _band(self, good: Decimal, edge: Decimal, walk: Decimal) -> EffectiveBand:
        if self.lower:
            return EffectiveBand(low=good, high=edge, walk_away=walk)
        return EffectiveBand(low=-edge, high=-good, walk_away=-walk)

    def band(self, shift: Decimal) -> EffectiveBand:
        if not shift:
            return self.plain_band
        good = self.good
        return self._band(good, max(self.edge + shift, good), max(self.walk + shift, good))

    def edge_value(self, shift: Decimal) -> Decimal:
        """The band's worse edge in the term's own unit after `shift`."""
        edge = max(self.edge + shift, self.good)
        return edge if self.lower else -edge

    def parse(self, raw: object) -> TermValue:
        # Exact-type fast paths for what JSON and parsed payloads carry; subclasses and
        # anything else take the general route.
        kind = type(raw)
        if kind is Decimal:
            value: Decimal | None = raw  # type: ignore[assignment]
        elif kind is int:
            value = Decimal(raw)  # type: ignore[arg-type]
        elif kind is str:
            try:
                value = parse_decimal(raw)  # type: ignore[arg-type]
            except OutOfRange as exc:
                raise ValueError(f"{self.key}: {exc}") from None
            except NotANumber:
                raise ValueError(
                    f"{self.key} is a number term; {raw!r} is not a finite number ({HOW})"
                ) from None
        else:
            value = to_decimal(raw)
        if value is None or not value.is_finite():
            raise ValueError(f"{self.key} is a number term; {raw!r} is not a finite number")
        if not value:
            value = value.copy_abs()  # -0 is 0
        if value and value.adjusted() >= MAX_DIGITS:
            raise ValueError(
                f"{self.key}: {raw!r} is out of range; numbers must be below 10^{MAX_DIGITS}"
            )
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_PLACES:
            if value != value.quantize(PLACES_QUANTUM):
                raise ValueError(f"{self.key}: {raw!r} has more than {MAX_PLACES} decimal places")
            value = value.quantize(PLACES_QUANTUM)
        return value

    def severity(self, value: TermValue) -> Decimal:
        number = self.parse(value)
        assert isinstance(number, Decimal)
        return number if self.lower else -number

    def measure(self, x: Decimal, shift: Decimal) -> tuple[Status, Decimal, int | None]:
        """Status, variance and tier reached for a normalised value under `shift`."""
        edge = self.edge
        if shift:
            good = self.good
            edge = max(edge + shift, good)
            walk = max(self.walk + shift, good)
        else:
            walk = self.walk
        if x <= edge:
            return (_BETTER if x < self.good else _WITHIN), ZERO, None
        variance = x - edge
        if x > walk:
            return _BLOCKED, variance, None
        tier = 1
        for limit in self.limits:
            if shift:
                limit = max(limit + shift, self.good)
            if x <= limit:
                break
            tier += 1
        return _EXCEPTION, variance, tier

    def evaluate(
        self,
        value: TermValue,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        x: Decimal = value if self.lower else -value  # type: ignore[assignment,operator]
        if shift:
            return self._evaluate_shifted(value, x, shift, overrides, rules)
        if x <= self.edge:
            return _new(
                TermResult,
                (
                    self.key,
                    "number",
                    self.owner,
                    self.priority,
                    value,
                    _BETTER if x < self.good else _WITHIN,
                    ZERO,
                    ZERO,
                    None,
                    (),
                    self.plain_band,
                    rules,
                ),
            )
        return self.outside(value, x, overrides, rules)

    def outside(
        self,
        value: TermValue,
        x: Decimal | None = None,
        overrides: list[tuple[int | None, str]] | None = None,
        rules: tuple[str, ...] = (),
    ) -> TermResult:
        """An unshifted value past the band edge (x > edge): an exception or blocked."""
        if x is None:
            x = value if self.lower else -value  # type: ignore[assignment,operator]
            assert x is not None
        variance = x - self.edge
        if x > self.walk:
            return _new(
                TermResult,
                (
                    self.key,
                    "number",
                    self.owner,
                    self.priority,
                    value,
                    _BLOCKED,
                    variance,
                    variance / self.span if self.span else ONE,
                    None,
                    (),
                    self.plain_band,
                    rules,
                ),
            )
        tier = 1
        for limit in self.limits:
            if x <= limit:
                break
            tier += 1
        return _new(
            TermResult,
            (
                self.key,
                "number",
                self.owner,
                self.priority,
                value,
                _EXCEPTION,
                variance,
                variance / self.span,
                tier,
                self._chain(tier, overrides) if overrides else self.chains[tier - 1],
                self.plain_band,
                rules,
            ),
        )

    def tier_limits(self, shift: Decimal) -> tuple[Decimal, ...]:
        """Each tier's limit after `shift`, as a reader states it (the term's unit and direction:
        25 for "up to 25%", 6 for a higher-is-better "down to 6 months")."""
        sign = 1 if self.lower else -1
        return tuple(sign * max(limit + shift, self.good) for limit in self.limits)

    def _geometry(self, shift: Decimal, rules: tuple[str, ...]) -> ShiftedGeometry:
        """Edge, walk-away, tier limits, span and band after `shift`, normalised.

        The same rules always add up to the same shift, so the result is kept per combination of
        fired rules (a handful per playbook; capped in case rules combine in many ways).
        """
        cached = self.shifted.get(rules)
        if cached is not None and cached[0] == shift:
            return cached
        good = self.good
        edge = max(self.edge + shift, good)
        walk = max(self.walk + shift, good)
        # Shifting moves the edge and walk-away together, so the span only changes when clamped.
        geometry = (
            shift,
            edge,
            walk,
            tuple(max(limit + shift, good) for limit in self.limits),
            walk - edge,
            self._band(good, edge, walk),
        )
        if cached is None and len(self.shifted) < _MAX_SHIFTED:
            self.shifted[rules] = geometry
        return geometry

    def _evaluate_shifted(
        self,
        value: TermValue,
        x: Decimal,
        shift: Decimal,
        overrides: list[tuple[int | None, str]] | None,
        rules: tuple[str, ...],
    ) -> TermResult:
        _, edge, walk, limits, span, band = self._geometry(shift, rules)
        if x <= edge:
            return _new(
                TermResult,
                (
                    self.key,
                    "number",
                    self.owner,
                    self.priority,
                    value,
                    _BETTER if x < self.good else _WITHIN,
                    ZERO,
                    ZERO,
                    None,
                    (),
                    band,
                    rules,
                ),
            )
        variance = x - edge
        if x > walk:
            status = _BLOCKED
            tier: int | None = None
            approvers: tuple[str, ...] = ()
        else:
            status = _EXCEPTION
            tier = 1
            for limit in limits:
                if x <= limit:
                    break
                tier += 1
            approvers = self._chain(tier, overrides) if overrides else self.chains[tier - 1]
        return _new(
            TermResult,
            (
                self.key,
                "number",
                self.owner,
                self.priority,
                value,
                status,
                variance,
                variance / span if span else ONE,
                tier,
                approvers,
                band,
                rules,
            ),
        )
