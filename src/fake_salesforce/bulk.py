"""Bulk API 2.0 query jobs: create (`POST /jobs/query`), poll (`GET /jobs/query/{id}`), read the
CSV results by locator (`GET /jobs/query/{id}/results?locator=&maxRecords=`).

As Salesforce documents them: a new job is `UploadComplete`, then `InProgress`, then
`JobComplete` (each poll moves it one state on here), or `Failed` with an `errorMessage` (see
`fail_bulk_jobs`). Results are CSV (comma; LF, or CRLF when the job asked for it), every
value quoted, a relationship field's column named `Account.BillingCountry`, booleans
`true`/`false`, datetimes `2024-05-01T12:34:56.000Z`, and a null as an empty value.
Each set of results carries `Sforce-NumberOfRecords` and `Sforce-Locator`, which is the string
`null` after the last set. A job's rows are the org's records as the job was created.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fake_salesforce.ids import format_datetime, make_id
from fake_salesforce.responses import Response, error_response, json_response
from fake_salesforce.schema import Record, json_value
from fake_salesforce.soql import FieldRef, SoqlError, parse_soql, sort_rows
from fake_salesforce.state import OrgState

STATES = ("UploadComplete", "InProgress", "JobComplete")
MAX_RESULTS = 10_000  # records per set of results when maxRecords is not given


@dataclass
class BulkJob:
    info: dict[str, Any]
    rows: list[Record]
    select: Sequence[FieldRef]
    polls: int = 0


class BulkMixin(OrgState):
    """Bulk API 2.0 query jobs over the records."""

    fail_bulk_jobs: str | None = None  # set: new jobs end Failed with this errorMessage

    _bulk: dict[str, BulkJob]

    def _bulk_jobs(self) -> dict[str, BulkJob]:
        if not hasattr(self, "_bulk"):
            self._bulk = {}
        return self._bulk

    def _bulk_create(self, body: bytes, version: str, user_id: str) -> Response:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return error_response(400, "JSON_PARSER_ERROR", "Invalid JSON in the request body")
        operation = request.get("operation")
        if operation not in ("query", "queryAll"):
            return error_response(400, "INVALIDJOB", "operation must be query or queryAll")
        if request.get("contentType", "CSV") != "CSV":
            return error_response(400, "INVALIDJOB", "contentType must be CSV")
        line_ending = request.get("lineEnding", "LF")
        if line_ending not in ("LF", "CRLF"):
            return error_response(400, "INVALIDJOB", "lineEnding must be LF or CRLF")
        if request.get("columnDelimiter", "COMMA") != "COMMA":
            return error_response(400, "INVALIDJOB", "the fake supports columnDelimiter COMMA")
        try:
            query = parse_soql(str(request.get("query") or ""), self._schema)
        except SoqlError as exc:
            return error_response(400, exc.error_code, exc.message)
        if query.count_only:
            return error_response(400, "INVALIDJOB", "Aggregate queries are not supported")
        deleted = operation == "queryAll"
        with self._lock:
            rows = [
                record
                for record in self._records.values()
                if (deleted or not record["IsDeleted"])
                and (query.where is None or query.where(record))
            ]
            self._counters["750"] += 1
            job_id = make_id("750", self._counters["750"])
            now = format_datetime(self.clock.now())
            info = {
                "id": job_id,
                "operation": operation,
                "object": "Opportunity",
                "createdById": user_id,
                "createdDate": now,
                "systemModstamp": now,
                "state": "UploadComplete",
                "concurrencyMode": "Parallel",
                "contentType": "CSV",
                "apiVersion": float(version),
                "lineEnding": line_ending,
                "columnDelimiter": "COMMA",
            }
            sort_rows(rows, query.order)
            if query.limit is not None:
                rows = rows[: query.limit]
            self._bulk_jobs()[job_id] = BulkJob(info, rows, query.select)
        return json_response(200, info)

    def _bulk_info(self, job_id: str) -> Response:
        with self._lock:
            job = self._bulk_jobs().get(job_id)
            if job is None:
                return error_response(404, "NOT_FOUND", "The requested resource does not exist")
            state = job.info["state"]
            if state in STATES[:-1]:
                job.polls += 1
                if self.fail_bulk_jobs is not None and state == "InProgress":
                    job.info["state"] = "Failed"
                    job.info["errorMessage"] = self.fail_bulk_jobs
                else:
                    job.info["state"] = STATES[STATES.index(state) + 1]
                job.info["systemModstamp"] = format_datetime(self.clock.now())
            info = dict(job.info)
        info.update(
            {
                "numberRecordsProcessed": len(job.rows) if info["state"] == "JobComplete" else 0,
                "retries": 0,
                "totalProcessingTime": 0,
            }
        )
        return json_response(200, info)

    def _bulk_results(
        self, job_id: str, locator: str | None, max_records: str | None, version: str
    ) -> Response:
        with self._lock:
            job = self._bulk_jobs().get(job_id)
        if job is None:
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        if float(version) != job.info["apiVersion"]:
            # As documented: results only in the API version the job was created in.
            return error_response(
                409,
                "INVALIDJOBSTATE",
                f"Use API version {job.info['apiVersion']} to get this job's results",
            )
        if job.info["state"] != "JobComplete":
            return error_response(
                400, "INVALIDJOBSTATE", f"Job state is {job.info['state']}, not JobComplete"
            )
        try:
            start = int(locator, 36) if locator else 0
            size = int(max_records) if max_records else MAX_RESULTS
        except ValueError:
            return error_response(400, "INVALID_LOCATOR", "invalid locator or maxRecords")
        if start < 0 or start > len(job.rows) or size < 1:
            return error_response(400, "INVALID_LOCATOR", "invalid locator or maxRecords")
        end = min(start + size, len(job.rows))
        out = io.StringIO()
        ending = "\r\n" if job.info["lineEnding"] == "CRLF" else "\n"
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator=ending)
        writer.writerow([ref.path for ref in job.select])
        for record in job.rows[start:end]:
            writer.writerow([_csv_value(record, ref) for ref in job.select])
        headers = {
            "Sforce-NumberOfRecords": str(end - start),
            "Sforce-Locator": _base36(end) if end < len(job.rows) else "null",
        }
        return Response(200, out.getvalue().encode(), "text/csv", headers)


def _csv_value(record: Record, ref: FieldRef) -> str:
    value = json_value(ref.get(record))
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if ref.spec.type == "datetime" and isinstance(value, str) and value.endswith("+0000"):
        return value[: -len("+0000")] + "Z"  # Bulk CSV writes UTC as Z
    return str(value)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while number:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
    return text or "0"
