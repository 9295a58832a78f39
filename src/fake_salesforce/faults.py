"""Injected faults, rejected records, and the API limit's ``Sforce-Limit-Info``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fake_salesforce.ids import id18
from fake_salesforce.responses import Response, json_response
from fake_salesforce.state import Fault, FiredFault, OrgState, Rejection

_API_KINDS = ("query", "query_more", "describe", "collections", "retrieve")
FAULT_KINDS = (*_API_KINDS, "token")
"""Kinds of call that faults can be injected into (``token`` covers OAuth and SOAP login)."""
_NAMED_FAULTS = frozenset(
    {
        "INVALID_SESSION_ID",
        "REQUEST_LIMIT_EXCEEDED",
        "QUERY_TIMEOUT",
        "INVALID_QUERY_LOCATOR",
        "timeout",
        "disconnect",
    }
)


class FaultsMixin(OrgState):
    """Faults to inject into calls of a kind, and what makes them fire."""

    def inject(self, kind: str, fault: str | int, times: int | None = 1, after: int = 0) -> None:
        """Make calls of ``kind`` fail: the fault fires on the ``after + 1``-th such call from
        now, then on the next ``times - 1`` (``times=None``: forever), then clears.

        Faults: ``"INVALID_SESSION_ID"`` (401; also expires every token, so the client must
        log in again), ``"REQUEST_LIMIT_EXCEEDED"`` (403), ``"QUERY_TIMEOUT"`` (400),
        ``"INVALID_QUERY_LOCATOR"`` (400), 500 (UNKNOWN_EXCEPTION), 502/503/504
        (SERVER_UNAVAILABLE), ``"timeout"`` (answers normally — the work is done — but only
        after ``timeout_sleep`` seconds), ``"disconnect"`` (closes the connection, no answer,
        nothing done). For ``token``, errors come back as OAuth errors / SOAP faults.
        Several faults on one kind fire in the order injected.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, not {kind!r}")
        if isinstance(fault, int):
            if not 500 <= fault <= 599:
                raise ValueError("status faults are 5xx")
            name = str(fault)
        elif fault in _NAMED_FAULTS:
            name = fault
        else:
            raise ValueError(f"unknown fault {fault!r}")
        if kind == "token" and name in ("QUERY_TIMEOUT", "INVALID_QUERY_LOCATOR"):
            raise ValueError(f"{name} makes no sense for the token endpoint")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None)")
        with self._lock:
            self._faults.append(Fault(kind, name, times, after))

    def clear_faults(self) -> None:
        """Drop injected faults and record rejections that have not fired."""
        with self._lock:
            self._faults.clear()
            self._rejections.clear()

    def reject_records(
        self,
        rejections: Mapping[str, tuple[str, str] | tuple[str, str, Sequence[str]]],
        *,
        times: int | None = 1,
    ) -> None:
        """Make Collections updates of these records fail with ``(statusCode, message[,
        fields])`` — ``times`` times each (None: always) — while the rest of the batch succeeds
        (e.g. ``FIELD_CUSTOM_VALIDATION_EXCEPTION``, ``UNABLE_TO_LOCK_ROW``)."""
        with self._lock:
            for record_id, spec in rejections.items():
                fields = list(spec[2]) if len(spec) == 3 else []
                self._rejections[id18(record_id)] = Rejection(spec[0], spec[1], fields, times)

    def expire_cursors(self) -> None:
        """Release every open query cursor: next pages answer 400 INVALID_QUERY_LOCATOR."""
        with self._lock:
            self._cursors.clear()

    def _take_fault(self, kind: str) -> str | None:
        with self._lock:
            chosen: Fault | None = None
            for fault in self._faults:
                if fault.kind != kind or fault.remaining == 0:
                    continue
                if chosen is None and fault.seen >= fault.after:
                    chosen = fault
                fault.seen += 1
            if chosen is None:
                return None
            if chosen.remaining is not None:
                chosen.remaining -= 1
            self._fired.append(FiredFault(kind, chosen.fault))
            self._faults = [f for f in self._faults if f.remaining != 0]
            return chosen.fault

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self._api_usage}/{self.daily_limit}"}

    def _fault_response(self, kind: str, fault: str) -> Response:
        if kind == "token":
            return self._token_fault(fault)
        with self._lock:
            if fault == "INVALID_SESSION_ID":
                self._tokens.clear()
                status, code, message = 401, fault, "Session expired or invalid"
            elif fault == "REQUEST_LIMIT_EXCEEDED":
                status, code, message = 403, fault, "TotalRequests Limit exceeded."
            elif fault == "QUERY_TIMEOUT":
                self._api_usage += 1
                status, code = 400, fault
                message = "Your query request was running for too long."
            elif fault == "INVALID_QUERY_LOCATOR":
                self._api_usage += 1
                status, code, message = 400, fault, "invalid query locator"
            elif fault == "500":
                status, code = 500, "UNKNOWN_EXCEPTION"
                message = (
                    "An unexpected error occurred. Please include this ErrorId if you contact "
                    "support: 1234567890-12345 (-1234567890)"
                )
            else:
                status, code = int(fault), "SERVER_UNAVAILABLE"
                message = "Server temporarily unavailable. Please try again later."
            return json_response(
                status, [{"message": message, "errorCode": code}], self._limit_header()
            )

    def _token_fault(self, fault: str) -> Response:
        if fault == "INVALID_SESSION_ID":
            return json_response(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        if fault == "REQUEST_LIMIT_EXCEEDED":
            return json_response(
                400, {"error": "invalid_grant", "error_description": "login rate exceeded"}
            )
        return json_response(
            int(fault), {"error": "unknown_error", "error_description": "retry your request"}
        )
