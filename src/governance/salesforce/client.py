"""The Salesforce adapter: the only code that knows Salesforce speaks HTTP.

Domain code talks to `SalesforceClient`. `SimpleSalesforceClient` implements it with
simple-salesforce (authentication, SOQL, `restful` for sObject Collections); the local fake org
in `src/fake_salesforce/` is driven through the same class. Every call has a timeout, an
expired session is renewed and the call retried, and faults come out as the typed errors below
so callers can decide: retry, pause, or park the work where an operator sees it.
Tokens, passwords and keys are never logged or put in an error message.
"""

from __future__ import annotations

import csv
import io
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests

from governance.settings import SalesforceSettings

MAX_COLLECTION = 200  # records per sObject Collections call


class SalesforceError(Exception):
    """A call Salesforce refused or could not answer; `code` is its errorCode."""

    retryable = False

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class SessionExpired(SalesforceError):
    """INVALID_SESSION_ID that survived re-authentication."""

    retryable = True


class QuotaExceeded(SalesforceError):
    """REQUEST_LIMIT_EXCEEDED, or our own stop before the configured share of the daily quota."""

    retryable = True


class QueryTimeout(SalesforceError):
    retryable = True


class Unavailable(SalesforceError):
    """5xx, a network error or a timeout: try again later."""

    retryable = True


class AuthenticationFailed(SalesforceError):
    """The org refused our credentials (the message never includes them)."""


@dataclass(frozen=True, slots=True)
class ApiUsage:
    used: int
    limit: int

    @property
    def share(self) -> Decimal:
        return Decimal(self.used) / Decimal(self.limit) if self.limit else Decimal(0)


@dataclass(frozen=True, slots=True)
class QueryPage:
    records: list[dict[str, Any]]
    total_size: int
    next_url: str | None

    @property
    def done(self) -> bool:
        return self.next_url is None


@dataclass(frozen=True, slots=True)
class RecordResult:
    """One record's answer in an sObject Collections call."""

    id: str | None
    success: bool
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BulkJob:
    """A Bulk API 2.0 query job: `state` is UploadComplete, InProgress, JobComplete, Failed or
    Aborted; `records` how many it found (once complete); `error` why it failed."""

    id: str
    state: str
    records: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BulkResults:
    """One set of a query job's results: records with the CSV's text (None for an empty
    value; a relationship's fields nested, as the REST API nests them), and the locator of
    the next set (None after the last)."""

    records: list[dict[str, Any]]
    locator: str | None


class SalesforceClient(ABC):
    """What the service needs from an org."""

    @abstractmethod
    def query(self, soql: str, *, include_deleted: bool = False) -> QueryPage:
        """The first page of a SOQL query (`queryAll` when `include_deleted`)."""

    @abstractmethod
    def query_more(self, next_url: str) -> QueryPage:
        """The page a `nextRecordsUrl` names."""

    @abstractmethod
    def bulk_query(self, soql: str, *, include_deleted: bool = False) -> BulkJob:
        """Create a Bulk API 2.0 query job (`queryAll` when `include_deleted`)."""

    @abstractmethod
    def bulk_job(self, job_id: str) -> BulkJob:
        """The job's state."""

    @abstractmethod
    def bulk_results(self, job_id: str, locator: str | None, max_records: int) -> BulkResults:
        """A set of a complete job's results (`locator` None: the first)."""

    @abstractmethod
    def describe(self, sobject: str) -> dict[str, Any]:
        """The sObject's describe result (fields with names and types)."""

    @abstractmethod
    def update(self, sobject: str, records: Sequence[Mapping[str, Any]]) -> list[RecordResult]:
        """Update up to 200 records (`allOrNone=false`); one result per record, in order."""

    @property
    @abstractmethod
    def usage(self) -> ApiUsage | None:
        """The org's API usage as of the last response (`Sforce-Limit-Info`)."""


_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def parse_limit_info(header: str | None) -> ApiUsage | None:
    match = _USAGE.search(header or "")
    return ApiUsage(int(match.group(1)), int(match.group(2))) if match else None


class _OrgSession(requests.Session):
    """A requests session with a timeout on every call and the org's real addresses.

    simple-salesforce builds `https://{domain}.salesforce.com` login URLs and `https://` API
    URLs. A login URL elsewhere (a proxy, or the local fake org on loopback) is reached by
    rewriting those; plain HTTP is allowed only for loopback hosts.
    """

    def __init__(self, settings: SalesforceSettings, domain: str) -> None:
        super().__init__()
        self.timeout = settings.timeout_seconds
        self.login_origin = settings.login_url.rstrip("/")
        self.login_alias = f"https://{domain}.salesforce.com"
        self.usage: ApiUsage | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        target = url.decode() if isinstance(url, bytes) else url
        if target.startswith(self.login_alias) and self.login_origin != self.login_alias:
            target = self.login_origin + target[len(self.login_alias) :]
        elif target.startswith("https://"):
            parts = urlsplit(target)
            if parts.hostname in ("127.0.0.1", "localhost") and _is_loopback_http(
                self.login_origin
            ):
                target = "http://" + target[len("https://") :]
        kwargs.setdefault("timeout", self.timeout)
        verb = method.decode() if isinstance(method, bytes) else method
        response = super().request(verb, target, *args, **kwargs)
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self.usage = usage
        return response


def _is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")


def login_domain(login_url: str) -> str:
    """simple-salesforce's `domain` for a login URL: login, test, acme.my, or a stand-in."""
    host = urlsplit(login_url).hostname or ""
    if host.endswith(".salesforce.com"):
        return host[: -len(".salesforce.com")]
    return "local.login"  # rewritten to the login URL by _OrgSession


def _error(exc: Exception) -> SalesforceError:
    """Our typed error for whatever simple-salesforce or requests raised."""
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed
    from simple_salesforce.exceptions import SalesforceError as SimpleError

    if isinstance(exc, requests.Timeout):
        return Unavailable("TIMEOUT", "Salesforce did not answer in time")
    if isinstance(exc, requests.RequestException):
        return Unavailable("NETWORK", type(exc).__name__)
    if isinstance(exc, SalesforceAuthenticationFailed):
        return AuthenticationFailed("AUTHENTICATION_FAILED", str(exc.code))
    if isinstance(exc, SimpleError):
        content = exc.content
        first: dict[str, Any] = content[0] if isinstance(content, list) and content else {}
        code = str(first.get("errorCode") or first.get("error") or f"HTTP_{exc.status}")
        message = str(first.get("message") or first.get("error_description") or "")[:500]
        if code == "INVALID_SESSION_ID":
            return SessionExpired(code, message, exc.status)
        if code == "REQUEST_LIMIT_EXCEEDED":
            return QuotaExceeded(code, message, exc.status)
        if code == "QUERY_TIMEOUT":
            return QueryTimeout(code, message, exc.status)
        if exc.status >= 500:
            return Unavailable(code, message, exc.status)
        return SalesforceError(code, message, exc.status)
    raise exc


def _bulk_record(columns: Sequence[list[str]], row: Sequence[str]) -> dict[str, Any]:
    """A CSV row as a record: an empty value is null, `Account.BillingCountry` nested."""
    record: dict[str, Any] = {}
    for path, value in zip(columns, row, strict=False):
        cell = value if value != "" else None
        if len(path) == 1:
            record[path[0]] = cell
        else:
            related = record.get(path[0])
            if related is None:
                related = record[path[0]] = {}
            related[path[1]] = cell
    return record


class SimpleSalesforceClient(SalesforceClient):
    """`SalesforceClient` over simple-salesforce, authenticated as the settings say."""

    def __init__(self, settings: SalesforceSettings) -> None:
        from simple_salesforce.api import Salesforce

        self.settings = settings
        domain = login_domain(settings.login_url)
        self._session = _OrgSession(settings, domain)
        common: dict[str, Any] = {
            "session": self._session,
            "version": settings.api_version,
            "domain": domain,
            "parse_float": Decimal,
        }
        secret = SalesforceSettings.secret
        try:
            if settings.auth == "jwt":
                self._sf = Salesforce(
                    username=settings.username,
                    consumer_key=secret(settings.consumer_key),
                    privatekey_file=str(settings.private_key_file),
                    **common,
                )
            elif settings.auth == "client_credentials":
                self._sf = Salesforce(
                    consumer_key=secret(settings.consumer_key),
                    consumer_secret=secret(settings.consumer_secret),
                    **common,
                )
            else:
                self._sf = Salesforce(
                    username=settings.username,
                    password=secret(settings.password),
                    security_token=secret(settings.security_token) or "",
                    **common,
                )
        except Exception as exc:
            raise _error(exc) from None

    @property
    def usage(self) -> ApiUsage | None:
        return self._session.usage

    def _page(self, body: Mapping[str, Any]) -> QueryPage:
        return QueryPage(
            records=list(body.get("records") or ()),
            total_size=int(body.get("totalSize") or 0),
            next_url=None if body.get("done", True) else body.get("nextRecordsUrl"),
        )

    def query(self, soql: str, *, include_deleted: bool = False) -> QueryPage:
        try:
            return self._page(self._sf.query(soql, include_deleted=include_deleted))
        except Exception as exc:
            raise _error(exc) from None

    def query_more(self, next_url: str) -> QueryPage:
        try:
            return self._page(self._sf.query_more(next_url, identifier_is_url=True))
        except Exception as exc:
            raise _error(exc) from None

    def _bulk_info(self, body: Mapping[str, Any]) -> BulkJob:
        return BulkJob(
            id=str(body["id"]),
            state=str(body.get("state") or ""),
            records=int(body.get("numberRecordsProcessed") or 0),
            error=body.get("errorMessage"),
        )

    def bulk_query(self, soql: str, *, include_deleted: bool = False) -> BulkJob:
        body = {
            "operation": "queryAll" if include_deleted else "query",
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        try:
            return self._bulk_info(self._sf.restful("jobs/query", method="POST", json=body) or {})
        except Exception as exc:
            raise _error(exc) from None

    def bulk_job(self, job_id: str) -> BulkJob:
        try:
            return self._bulk_info(self._sf.restful(f"jobs/query/{job_id}", method="GET") or {})
        except Exception as exc:
            raise _error(exc) from None

    def bulk_results(self, job_id: str, locator: str | None, max_records: int) -> BulkResults:
        params: dict[str, Any] = {"maxRecords": max_records}
        if locator:
            params["locator"] = locator
        url = f"{self._sf.base_url}jobs/query/{job_id}/results"
        try:
            response = self._sf._call_salesforce("GET", url, params=params, stream=True)
        except Exception as exc:
            raise _error(exc) from None
        with response:
            response.raw.decode_content = True
            response.raw.auto_close = False  # the text wrapper reads to the end itself
            # Streamed: the CSV is parsed as it arrives, never held whole.
            text = io.TextIOWrapper(response.raw, encoding="utf-8", newline="")
            rows = csv.reader(text)
            header = next(rows, [])
            columns = [name.split(".", 1) for name in header]
            records = [_bulk_record(columns, row) for row in rows if row]
            following = response.headers.get("Sforce-Locator")
        return BulkResults(records, None if following in (None, "", "null") else following)

    def describe(self, sobject: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self._sf, sobject).describe()
        except Exception as exc:
            raise _error(exc) from None
        return result

    def update(self, sobject: str, records: Sequence[Mapping[str, Any]]) -> list[RecordResult]:
        if len(records) > MAX_COLLECTION:
            raise ValueError(f"at most {MAX_COLLECTION} records per call")
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": sobject}, **r} for r in records],
        }
        try:
            # Salesforce numbers are doubles; Decimals go out as JSON numbers.
            answer = self._sf.restful(
                "composite/sobjects", method="PATCH", data=json.dumps(body, default=float)
            )
        except Exception as exc:
            raise _error(exc) from None
        return [
            RecordResult(
                id=item.get("id"),
                success=bool(item.get("success")),
                errors=item.get("errors") or [],
            )
            for item in answer or ()
        ]
