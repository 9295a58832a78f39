"""``query`` / ``queryAll`` with ``nextRecordsUrl`` paging, and records as the API renders them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fake_salesforce.ids import make_id
from fake_salesforce.responses import Response, error_response, json_response
from fake_salesforce.schema import Record, json_value
from fake_salesforce.soql import FieldRef, SoqlError, parse_soql, sort_rows
from fake_salesforce.state import Cursor, OrgState


class QueryMixin(OrgState):
    """SOQL queries over the records, and the cursors their next pages come from."""

    def _query(
        self, soql: str | None, version: str, include_deleted: bool, headers: Mapping[str, str]
    ) -> Response:
        if not soql or not soql.strip():
            return error_response(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = parse_soql(soql, self._schema)
        except SoqlError as exc:
            return error_response(400, exc.error_code, exc.message)
        batch = self.batch_size
        option = re.search(r"batchSize\s*=\s*(\d+)", headers.get("sforce-query-options") or "")
        if option:
            batch = min(batch, max(200, min(2000, int(option.group(1)))))
        batch = max(1, batch)
        with self._lock:
            rows = [
                record
                for record in self._records.values()
                if (include_deleted or not record["IsDeleted"])
                and (query.where is None or query.where(record))
            ]
        sort_rows(rows, query.order)
        if query.offset:
            rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        if query.count_only:
            return json_response(200, {"totalSize": len(rows), "done": True, "records": []})
        page = rows[:batch]
        payload: dict[str, Any] = {"totalSize": len(rows), "done": len(rows) <= batch}
        if len(rows) > batch:
            with self._lock:
                self._counters["01g"] += 1
                locator = make_id("01g", self._counters["01g"])
                self._cursors[locator] = Cursor(rows, query.select, batch)
                while len(self._cursors) > max(1, self.max_cursors):
                    self._cursors.popitem(last=False)
            payload["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{batch}"
        payload["records"] = [render(r, query.select, version) for r in page]
        return json_response(200, payload)

    def _query_more(self, locator: str, version: str) -> Response:
        cursor_id, _, offset_text = locator.rpartition("-")
        with self._lock:
            cursor = self._cursors.get(cursor_id)
        if cursor is None or not offset_text.isdigit() or int(offset_text) >= len(cursor.rows):
            return error_response(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        offset = int(offset_text)
        end = offset + cursor.batch
        payload: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if end < len(cursor.rows):
            payload["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor_id}-{end}"
        payload["records"] = [render(r, cursor.select, version) for r in cursor.rows[offset:end]]
        return json_response(200, payload)


def render(record: Record, select: Sequence[FieldRef], version: str) -> Record:
    """A record as the REST API returns it: ``attributes``, then the selected fields, an Account
    field nested under ``Account`` (None when the opportunity has no account)."""
    out: Record = {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/v{version}/sobjects/Opportunity/{record['Id']}",
        }
    }
    for ref in select:
        if ref.relationship is None:
            out[ref.spec.name] = json_value(record.get(ref.spec.name))
            continue
        related = record.get(ref.relationship)
        if not related or related.get("Id") is None:
            out[ref.relationship] = None
            continue
        nested = out.get(ref.relationship)
        if nested is None:
            nested = {
                "attributes": {
                    "type": ref.relationship,
                    "url": f"/services/data/v{version}/sobjects/{ref.relationship}/{related['Id']}",
                }
            }
            out[ref.relationship] = nested
        nested[ref.spec.name] = json_value(related.get(ref.spec.name))
    return out
