"""A report as CSV: its rows, the `group_by` dimensions first (the API's `Accept: text/csv` form,
and the console's downloads)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, get_args

from pydantic import BaseModel

from governance.analytics.schemas import Dimension

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell. Text a spreadsheet would run as a formula (a team named `=HYPERLINK(…)`
    synced from Salesforce) gets a leading apostrophe; numbers are left as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text.startswith(_FORMULA_START):
        try:
            Decimal(text)
        except ArithmeticError:
            return "'" + text
    return text


def report_csv(report: BaseModel, dimensions: Sequence[Dimension]) -> str:
    """The report's rows as CSV text: a header, then one line per row."""
    rows = report.model_dump(mode="json")["rows"]
    (row_model,) = get_args(type(report).model_fields["rows"].annotation)
    fields = [name for name in row_model.model_fields if name != "group"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([d.value for d in dimensions] + fields)
    for row in rows:
        group = row.get("group", {})
        writer.writerow(
            [_cell(group.get(d.value)) for d in dimensions] + [_cell(row[f]) for f in fields]
        )
    return out.getvalue()
