"""Charts drawn on the server as inline SVG: bars (side by side for several series), stacked
bars and lines.

Pure: data in, markup out (no I/O, no script). Colours come from CSS classes (`s0`…`s5`, or a
series' own `tone`), never inline styles, which the console's CSP forbids. Each chart is an
`<svg role="img">` named by its `<title>` and described by its `<desc>`; the page puts the
chart's `table()` after it as the text alternative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from markupsafe import Markup, escape

Number = Decimal | int | None
Kind = Literal["bar", "stacked", "line"]

WIDTH = 560
PLOT_HEIGHT = 200
LEFT = 60
RIGHT = 16
TOP = 14
LEGEND = 26
LABEL_CHARS = 20
PALETTE = 6

Scale = Callable[[float], float]  # a value's y coordinate


def number(value: Number, unit: str = "") -> str:
    """A figure as people write it: no exponent, no trailing zeros, with its unit."""
    if value is None:
        return "—"
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


@dataclass(frozen=True, slots=True)
class Series:
    """One named run of values, one per label (None: no value)."""

    name: str
    values: tuple[Number, ...]
    tone: str | None = None  # a CSS class instead of the palette's (e.g. "ok", "bad")


@dataclass(frozen=True, slots=True)
class Chart:
    """What a chart shows; `svg()` draws it, `table()` is its text alternative."""

    key: str  # unique on the page: the ids of its title and description derive from it
    kind: Kind
    title: str
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str = ""
    summary: str = ""
    axis: str = ""  # what the labels are ("month", "region")

    def __post_init__(self) -> None:
        for s in self.series:
            if len(s.values) != len(self.labels):
                raise ValueError(f"series {s.name!r} has {len(s.values)} values for "
                                 f"{len(self.labels)} labels")  # fmt: skip

    @property
    def empty(self) -> bool:
        return not self.labels or all(v is None for s in self.series for v in s.values)

    def table(self) -> tuple[list[str], list[list[str]]]:
        """The chart's figures as a header and rows of text."""
        header = [self.axis or "", *(s.name for s in self.series)]
        rows = [
            [label, *(number(s.values[i], self.unit) for s in self.series)]
            for i, label in enumerate(self.labels)
        ]
        return header, rows

    def svg(self) -> Markup:
        """The chart as inline SVG markup."""
        return _draw(self)


# --- scale ---------------------------------------------------------------------------------------


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover (the loop always returns)


def _domain(chart: Chart) -> tuple[float, float, float]:
    """Low and high ends of the value axis (0 always inside) and the tick step."""
    if chart.kind == "stacked":
        highs = [
            sum(float(s.values[i] or 0) for s in chart.series if (s.values[i] or 0) > 0)
            for i in range(len(chart.labels))
        ]
        lows = [
            sum(float(s.values[i] or 0) for s in chart.series if (s.values[i] or 0) < 0)
            for i in range(len(chart.labels))
        ]
    else:
        values = [float(v) for s in chart.series for v in s.values if v is not None]
        highs, lows = values, values
    high, low = max([0.0, *highs]), min([0.0, *lows])
    if high == low:
        high = 1.0
    step = _nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _tick_text(value: float, unit: str) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    text = "0" if text in ("-0", "") else text
    return f"{text}{unit}" if unit == "%" else text


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _tone(chart: Chart, index: int) -> str:
    tone = chart.series[index].tone
    return tone if tone else f"s{index % PALETTE}"


# --- drawing -------------------------------------------------------------------------------------


def _draw(chart: Chart) -> Markup:
    title_id, desc_id = f"{chart.key}-title", f"{chart.key}-desc"
    summary = chart.summary or chart.title
    if chart.empty:
        return Markup(
            '<svg class="chart chart-empty" viewBox="0 0 {w} 60" role="img" '
            'aria-labelledby="{t} {d}"><title id="{t}">{title}</title>'
            '<desc id="{d}">No data for these filters.</desc>'
            '<text class="chart-note" x="{x}" y="34" text-anchor="middle">'
            "No data for these filters</text></svg>"
        ).format(w=WIDTH, t=title_id, d=desc_id, title=chart.title, x=WIDTH // 2)

    count = len(chart.labels)
    longest = max(len(_short(label)) for label in chart.labels)
    rotate = longest * 7.2 > (WIDTH - LEFT - RIGHT) / count
    # A slanted first label reaches left of its bar: make room so it is not cut off.
    left = (
        max(LEFT, round(longest * 5.1 - (WIDTH - LEFT - RIGHT) / count / 2 + 6)) if rotate else LEFT
    )
    plot_width = WIDTH - left - RIGHT
    slot = plot_width / count
    every = max(1, math.ceil(count / 24)) if rotate else max(1, math.ceil(count * 40 / plot_width))
    bottom = (longest * 5.4 + 22) if rotate else 30
    legend = LEGEND if len(chart.series) > 1 else 0
    top = TOP + legend
    height = round(top + PLOT_HEIGHT + bottom)
    low, high, step = _domain(chart)

    def y(value: float) -> float:
        return top + PLOT_HEIGHT * (high - value) / (high - low)

    parts: list[str] = [
        f'<svg class="chart chart-{chart.kind}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}">',
        f'<title id="{title_id}">{escape(chart.title)}</title>',
        f'<desc id="{desc_id}">{escape(summary.rstrip("."))}. '
        "The table after the chart gives every figure.</desc>",
    ]
    # Legend (several series only), left to right.
    if legend:
        x = float(left)
        for i, s in enumerate(chart.series):
            parts.append(
                f'<rect class="swatch {_tone(chart, i)}" x="{_fmt(x)}" y="{TOP - 4}" '
                'width="12" height="12" rx="2"></rect>'
                f'<text class="chart-legend" x="{_fmt(x + 17)}" y="{TOP + 6}">'
                f"{escape(s.name)}</text>"
            )
            x += 17 + len(s.name) * 7.4 + 22
    # Value axis: grid lines and their figures.
    ticks = round((high - low) / step)
    for n in range(ticks + 1):
        value = low + n * step
        at = _fmt(y(value))
        cls = "grid zero" if abs(value) < step / 1e6 else "grid"
        parts.append(
            f'<line class="{cls}" x1="{left}" x2="{WIDTH - RIGHT}" y1="{at}" y2="{at}"></line>'
            f'<text class="chart-tick" x="{left - 6}" y="{at}" dy="4" text-anchor="end">'
            f"{escape(_tick_text(value, chart.unit))}</text>"
        )
    if chart.kind == "line":
        parts += _lines(chart, left, slot, y)
    else:
        parts += _bars(chart, left, slot, y)
    # Category labels, thinned out when they would overlap.
    base = top + PLOT_HEIGHT
    for i, label in enumerate(chart.labels):
        if i % every:
            continue
        cx = _fmt(left + slot * (i + 0.5))
        text = escape(_short(label))
        if rotate:
            parts.append(
                f'<text class="chart-label" x="{cx}" y="{_fmt(base + 12)}" text-anchor="end" '
                f'transform="rotate(-40 {cx} {_fmt(base + 12)})">{text}</text>'
            )
        else:
            parts.append(
                f'<text class="chart-label" x="{cx}" y="{_fmt(base + 18)}" '
                f'text-anchor="middle">{text}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _point_title(chart: Chart, label: str, series: Series, value: Number) -> str:
    name = f"{series.name}, " if len(chart.series) > 1 else ""
    return str(escape(f"{label}: {name}{number(value, chart.unit)}"))


def _bars(chart: Chart, left: int, slot: float, y: Scale) -> list[str]:
    parts: list[str] = []
    zero = y(0.0)
    group = slot * 0.72
    side_by_side = chart.kind == "bar" and len(chart.series) > 1
    width = group / len(chart.series) if side_by_side else group
    for i, label in enumerate(chart.labels):
        x0 = left + slot * i + (slot - group) / 2
        above, below = 0.0, 0.0  # stacked: running totals on each side of zero
        for j, s in enumerate(chart.series):
            value = s.values[i]
            if value is None:
                continue
            v = float(value)
            if chart.kind == "stacked":
                start = above if v >= 0 else below
                end = start + v
                if v >= 0:
                    above = end
                else:
                    below = end
                top_y, bottom_y = sorted((y(start), y(end)))
                x = x0
            else:
                top_y, bottom_y = sorted((y(v), zero))
                x = x0 + (width * j if side_by_side else 0)
            parts.append(
                f'<rect class="bar-rect {_tone(chart, j)}" x="{_fmt(x)}" y="{_fmt(top_y)}" '
                f'width="{_fmt(max(width - (1 if side_by_side else 0), 1))}" '
                f'height="{_fmt(bottom_y - top_y)}" data-value="{escape(number(value))}">'
                f"<title>{_point_title(chart, label, s, value)}</title></rect>"
            )
    return parts


def _lines(chart: Chart, left: int, slot: float, y: Scale) -> list[str]:
    parts: list[str] = []
    for j, s in enumerate(chart.series):
        tone = _tone(chart, j)
        run: list[str] = []
        points: list[str] = []
        runs: list[list[str]] = []
        for i, value in enumerate(s.values):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            cx, cy = _fmt(left + slot * (i + 0.5)), _fmt(y(float(value)))
            run.append(f"{cx},{cy}")
            points.append(
                f'<circle class="dot {tone}" cx="{cx}" cy="{cy}" r="4" '
                f'data-value="{escape(number(value))}">'
                f"<title>{_point_title(chart, chart.labels[i], s, value)}</title></circle>"
            )
        if run:
            runs.append(run)
        parts += [
            f'<polyline class="line {tone}" points="{" ".join(r)}"></polyline>'
            for r in runs
            if len(r) > 1
        ]
        parts += points
    return parts


def series(name: str, values: Sequence[Number], tone: str | None = None) -> Series:
    """A series from any sequence of values."""
    return Series(name, tuple(values), tone)
