"""``FakeSalesforce``: the org's parts put together, served over HTTP, and the dispatch of
every request (routing, faults, authentication, the API limit, the request log)."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fake_salesforce.auth import AuthMixin
from fake_salesforce.bulk import BulkMixin
from fake_salesforce.clock import FakeClock
from fake_salesforce.faults import FAULT_KINDS, FaultsMixin
from fake_salesforce.ids import INTEGRATION_USER_ID
from fake_salesforce.query import QueryMixin
from fake_salesforce.responses import NOT_FOUND_MESSAGE, Response, error_response, json_response
from fake_salesforce.server import Server
from fake_salesforce.sobjects import SObjectsMixin
from fake_salesforce.state import FiredFault, IssuedToken, LoggedRequest


class FakeSalesforce(AuthMixin, QueryMixin, BulkMixin, SObjectsMixin, FaultsMixin):
    """A fake Salesforce org on ``127.0.0.1`` (ephemeral port), started on construction.

    Use as a context manager or call ``stop()``. All state is in memory, guarded by one lock;
    records are never mutated in place (an edit stores a new dict), so a query cursor's snapshot
    is just a list of references.

    The state is ``OrgState`` (state.py); the Python API to records, sessions and logins, queries,
    sObject resources and faults come from the mixins in records.py, auth.py, query.py,
    sobjects.py and faults.py; this class adds the server, the lifecycle, the counters and the
    dispatch of every request.
    """

    def __init__(
        self,
        api_version: str = "59.0",
        *,
        custom_fields: Mapping[str, str | Mapping[str, Any]] | None = None,
        batch_size: int = 2000,
        daily_limit: int = 100_000,
        timeout_sleep: float = 2.0,
        integration_user_id: str = INTEGRATION_USER_ID,
        clock: FakeClock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(
            api_version,
            custom_fields=custom_fields,
            batch_size=batch_size,
            daily_limit=daily_limit,
            timeout_sleep=timeout_sleep,
            integration_user_id=integration_user_id,
            clock=clock,
        )
        self._stopped = False
        self._server = Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-salesforce",
            daemon=True,
        )
        self._thread.start()

    # ---------------------------------------------------------------- lifecycle
    def stop(self) -> None:
        """Stop serving and drop open connections (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeSalesforce:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- observability
    @property
    def calls(self) -> Counter[str]:
        """Requests received, per kind (query — which includes queryAll —, query_more,
        describe, collections, retrieve, token, other) and ``total`` (all of them). A copy."""
        with self._lock:
            return Counter(self._calls)

    @property
    def api_usage(self) -> int:
        """Calls counted against the daily limit: the USED in ``Sforce-Limit-Info``."""
        with self._lock:
            return self._api_usage

    @api_usage.setter
    def api_usage(self, value: int) -> None:
        with self._lock:
            self._api_usage = value

    @property
    def fired(self) -> list[FiredFault]:
        """Faults that actually fired, in order (injected faults and rejected records)."""
        with self._lock:
            return list(self._fired)

    def pending_faults(self) -> list[tuple[str, str, int | None]]:
        """Injected faults not yet used up: ``(kind, fault, remaining)`` (None: forever)."""
        with self._lock:
            return [(f.kind, f.fault, f.remaining) for f in self._faults if f.remaining != 0]

    @property
    def log(self) -> list[LoggedRequest]:
        """The last 2,000 requests: method, path, kind, status and the SOQL if any."""
        with self._lock:
            return list(self._log)

    @property
    def writes(self) -> list[tuple[str, dict[str, Any]]]:
        """Every record an sObject Collections update applied, in order: ``(Id, fields)``."""
        with self._lock:
            return [(record_id, dict(values)) for record_id, values in self._writes]

    @property
    def issued_tokens(self) -> list[IssuedToken]:
        with self._lock:
            return list(self._issued)

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of bugs in the fake itself (answered as 500 UNKNOWN_EXCEPTION)."""
        with self._lock:
            return list(self._internal_errors)

    def reset_stats(self) -> None:
        """Zero ``calls`` and forget ``fired`` and ``log`` (``api_usage`` stays)."""
        with self._lock:
            self._calls.clear()
            self._fired.clear()
            self._log.clear()

    def soql_sent(self) -> list[str]:
        """The SOQL of every logged query, in order."""
        return [entry.soql for entry in self.log if entry.soql is not None]

    # ---------------------------------------------------------------- schema
    def field_types(self, sobject: str = "Opportunity") -> dict[str, str]:
        """``{field name: describe type}`` for Opportunity or Account."""
        fields = self._schema.account if sobject.lower() == "account" else self._schema.opportunity
        return {name: spec.type for name, spec in fields.items()}

    # ---------------------------------------------------------------- HTTP dispatch
    def _handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        kind, allowed, handler = self._route(path, params, headers, body)
        soql = params.get("q") if kind == "query" else None
        with self._lock:
            self._calls[kind] += 1
            self._calls["total"] += 1
        if method not in allowed:
            response = error_response(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}",
            )
            response.headers["Allow"] = ", ".join(allowed)
        else:
            response = self._serve(kind, handler, headers)
        with self._lock:
            self._log.append(LoggedRequest(method, raw_path, kind, response.status, soql))
        return response

    def _serve(
        self,
        kind: str,
        handler: Callable[[str], Response],
        headers: Mapping[str, str],
    ) -> Response:
        fault = self._take_fault(kind) if kind in FAULT_KINDS else None
        if fault == "disconnect":
            return Response(0, disconnect=True)
        if fault == "timeout":
            self._stopping.wait(self.timeout_sleep)
        elif fault is not None:
            return self._fault_response(kind, fault)
        if kind in ("token", "internal", "public"):
            return handler("")
        user_id = self._authenticate(headers)
        with self._lock:
            if user_id is None:
                return json_response(
                    401,
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                    self._limit_header(),
                )
            if self._api_usage >= self.daily_limit:
                return json_response(
                    403,
                    [
                        {
                            "message": "TotalRequests Limit exceeded.",
                            "errorCode": "REQUEST_LIMIT_EXCEEDED",
                        }
                    ],
                    self._limit_header(),
                )
            self._api_usage += 1
            limit = self._limit_header()
        response = handler(user_id)
        response.headers.update(limit)
        return response

    def _route(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> tuple[str, tuple[str, ...], Callable[[str], Response]]:
        def not_found(_user: str) -> Response:
            return error_response(404, "NOT_FOUND", NOT_FOUND_MESSAGE)

        if path == "/services/oauth2/token":
            return "token", ("POST",), lambda _user: self._oauth_token(params, headers, body)
        if re.fullmatch(r"/services/Soap/u/\d+\.\d(?:/.*)?", path):
            return "token", ("POST",), lambda _user: self._soap_login(body)
        if path == "/_fake/stats":
            return "internal", ("GET",), lambda _user: json_response(200, self.stats())
        if path == "/services/data":
            return "public", ("GET",), lambda _user: self._versions()
        match = re.fullmatch(r"/services/data/v(\d+\.\d)(/.*)?", path)
        if not match:
            return "public", ("GET", "POST", "PATCH", "PUT", "DELETE"), not_found
        version, rest = match.group(1), match.group(2) or ""
        if not 20.0 <= float(version) <= float(self.api_version):
            return "public", ("GET", "POST", "PATCH", "PUT", "DELETE"), not_found
        if rest in ("/query", "/queryAll"):
            deleted = rest == "/queryAll"
            return (
                "query",
                ("GET",),
                lambda _user: self._query(params.get("q"), version, deleted, headers),
            )
        match = re.fullmatch(r"/query(?:All)?/([^/]+)", rest)
        if match:
            locator = unquote(match.group(1))
            return "query_more", ("GET",), lambda _user: self._query_more(locator, version)
        match = re.fullmatch(r"/sobjects/([A-Za-z_]+)/describe", rest)
        if match:
            sobject = match.group(1)
            return "describe", ("GET",), lambda _user: self._describe(sobject, version)
        match = re.fullmatch(r"/sobjects/Opportunity/([^/]+)", rest, re.IGNORECASE)
        if match:
            record_id = unquote(match.group(1))
            fields = params.get("fields")
            return "retrieve", ("GET",), lambda _user: self._retrieve(record_id, fields, version)
        if rest == "/jobs/query":
            return "bulk", ("POST",), lambda user: self._bulk_create(body, version, user)
        match = re.fullmatch(r"/jobs/query/([^/]+)(/results)?", rest)
        if match:
            job_id = unquote(match.group(1))
            if match.group(2):
                return (
                    "bulk_results",
                    ("GET",),
                    lambda _user: self._bulk_results(
                        job_id, params.get("locator"), params.get("maxRecords"), version
                    ),
                )
            return "bulk", ("GET",), lambda _user: self._bulk_info(job_id)
        if rest == "/composite/sobjects":
            return "collections", ("PATCH",), lambda user: self._collections(body, user)
        return "other", ("GET", "POST", "PATCH", "PUT", "DELETE"), not_found

    def stats(self) -> dict[str, Any]:
        """Counters as JSON-able data (also served at ``GET /_fake/stats``)."""
        with self._lock:
            return {
                "url": self.url,
                "api_usage": self._api_usage,
                "daily_limit": self.daily_limit,
                "calls": dict(self._calls),
                "fired": [list(f) for f in self._fired],
                "records": len(self._records),
                "deleted": sum(1 for r in self._records.values() if r["IsDeleted"]),
                "open_cursors": len(self._cursors),
            }

    def _versions(self) -> Response:
        """Every version served, oldest first, as Salesforce lists them (31.0 on: the older
        ones are retired)."""
        major = int(float(self.api_version))
        return json_response(
            200,
            [
                {"label": f"v{v}.0", "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                for v in range(min(31, major), major + 1)
            ],
        )
