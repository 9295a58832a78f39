"""The chart module: figures become proportional bars and points, nothing breaks on no data, and
labels can never inject markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from governance.web.charts import Chart, Series, number, series

SVG = "{http://www.w3.org/2000/svg}"


def _parse(chart: Chart) -> ET.Element:
    # Inline SVG in HTML needs no namespace; add it so the markup parses as XML too.
    markup = str(chart.svg()).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return ET.fromstring(markup)


def _bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if "bar-rect" in r.get("class", "")]


def _height(rect: ET.Element) -> float:
    return float(rect.get("height", "0"))


def test_bar_heights_are_proportional_to_the_values() -> None:
    chart = Chart(
        "c", "bar", "Deals", ("APAC", "EMEA", "NA"),
        (series("deals", [Decimal(25), Decimal(50), Decimal(100)]),),
    )  # fmt: skip
    bars = _bars(_parse(chart))
    assert [b.get("data-value") for b in bars] == ["25", "50", "100"]
    heights = [_height(b) for b in bars]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert heights[2] == pytest.approx(4 * heights[0])
    # The same baseline: each bar ends where the others do.
    bottoms = {round(float(b.get("y", "0")) + _height(b), 3) for b in bars}
    assert len(bottoms) == 1


def test_negative_values_hang_below_the_zero_line() -> None:
    chart = Chart("c", "bar", "Margin", ("a", "b"), (series("margin", [10, -10]),), unit="%")
    root = _parse(chart)
    up, down = _bars(root)
    assert _height(up) == pytest.approx(_height(down))
    assert float(down.get("y", "0")) == pytest.approx(float(up.get("y", "0")) + _height(up))
    zero = next(line for line in root.iter(f"{SVG}line") if "zero" in line.get("class", ""))
    assert float(zero.get("y1", "0")) == pytest.approx(float(down.get("y", "0")))


def test_several_series_stand_side_by_side_and_get_a_legend() -> None:
    chart = Chart(
        "c", "bar", "Cycle", ("finance", "legal"),
        (series("median", [4, 8]), series("p90", [12, 16])),
    )  # fmt: skip
    root = _parse(chart)
    bars = _bars(root)
    assert len(bars) == 4
    assert {b.get("class") for b in bars} == {"bar-rect s0", "bar-rect s1"}
    assert [float(b.get("x", "0")) for b in bars] == sorted(float(b.get("x", "0")) for b in bars)
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-legend"]
    assert legend == ["median", "p90"]


def test_stacked_segments_add_up_to_the_total() -> None:
    chart = Chart(
        "c", "stacked", "Verdicts", ("2026-01", "2026-02"),
        (Series("auto", (6, 3), "ok"), Series("needs", (3, 3), "warn"),
         Series("blocked", (1, 0), "bad")),
    )  # fmt: skip
    bars = _bars(_parse(chart))
    january = [b for b in bars if b.get("x") == bars[0].get("x")]
    february = [b for b in bars if b.get("x") != bars[0].get("x")]
    assert len(january) == 3
    assert len(february) == 3  # a zero still draws (an empty segment)
    total_jan = sum(_height(b) for b in january)
    total_feb = sum(_height(b) for b in february)
    assert total_jan / total_feb == pytest.approx(10 / 6)
    assert [b.get("class") for b in january] == [
        "bar-rect ok",
        "bar-rect warn",
        "bar-rect bad",
    ]


def test_a_line_rises_with_its_values_and_breaks_where_one_is_missing() -> None:
    chart = Chart(
        "c", "line", "Rate", ("a", "b", "c", "d", "e"),
        (series("rate", [10, 20, None, 30, 40]),), unit="%",
    )  # fmt: skip
    root = _parse(chart)
    dots = list(root.iter(f"{SVG}circle"))
    heights = [float(d.get("cy", "0")) for d in dots]
    assert len(dots) == 4
    assert heights == sorted(heights, reverse=True)  # higher values, higher up (smaller y)
    assert len(list(root.iter(f"{SVG}polyline"))) == 2


@pytest.mark.parametrize(
    "chart",
    [
        Chart("e", "bar", "Nothing", (), ()),
        Chart("e", "line", "Nothing", ("a", "b"), (series("x", [None, None]),)),
        Chart("e", "stacked", "Nothing", (), (series("x", []),)),
    ],
)
def test_no_data_draws_a_note_instead_of_an_empty_frame(chart: Chart) -> None:
    root = _parse(chart)
    assert chart.empty
    assert root.get("role") == "img"
    assert _bars(root) == []
    assert "No data for these filters" in "".join(root.itertext())


def test_all_zeros_still_draw_an_axis() -> None:
    root = _parse(Chart("z", "bar", "Zeros", ("a", "b"), (series("n", [0, 0]),)))
    assert [_height(b) for b in _bars(root)] == [0, 0]


def test_labels_and_titles_are_escaped() -> None:
    evil = '<script>alert("x")</script> & "quotes"'
    chart = Chart(
        "c", "bar", f"Teams {evil}", (evil, "plain"), (series(evil, [1, 2]), series("b", [3, 4])),
        summary=evil,
    )  # fmt: skip
    markup = str(chart.svg())
    assert "<script>" not in markup
    root = _parse(chart)  # well-formed: nothing a label holds breaks out of its element
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == f"Teams {evil}"
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels[1] == "plain"
    assert labels[0] is not None
    assert labels[0].startswith('<script>alert("x")')


def test_the_chart_is_an_image_named_by_its_title_and_description() -> None:
    root = _parse(Chart("win", "bar", "Win rate", ("a",), (series("win", [50]),), summary="S."))
    assert root.get("role") == "img"
    title_id, desc_id = (root.get("aria-labelledby") or "").split()
    assert root.find(f"{SVG}title[@id='{title_id}']") is not None
    desc = root.find(f"{SVG}desc[@id='{desc_id}']")
    assert desc is not None
    assert (desc.text or "").startswith("S. ")
    assert "style=" not in str(Chart("x", "bar", "t", ("a",), (series("v", [1]),)).svg())


def test_the_table_gives_every_figure_with_its_unit() -> None:
    chart = Chart(
        "c", "bar", "Win rate", ("EMEA", "NA"),
        (series("win", [Decimal("42.50"), None]), series("lost", [Decimal("57.5"), 3])),
        unit="%", axis="region",
    )  # fmt: skip
    assert chart.table() == (
        ["region", "win", "lost"],
        [["EMEA", "42.5%", "57.5%"], ["NA", "—", "3%"]],
    )
    assert number(Decimal("3.50"), "h") == "3.5 h"
    assert number(Decimal("-0.00")) == "0"


def test_a_series_must_have_one_value_per_label() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        Chart("c", "bar", "t", ("a", "b", "c"), (series("x", [1, 2]),))
