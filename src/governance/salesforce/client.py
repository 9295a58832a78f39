"""The Salesforce adapter: the only code that knows Salesforce speaks HTTP.

Domain code talks to `SalesforceClient`. `SimpleSalesforceClient` implements it with an OAuth 2.0
token (JWT bearer, client credentials, or username-password through a connected app) and
simple-salesforce (SOQL, `restful` for sObject Collections); the local fake org
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
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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


TOKEN_PATH = "/services/oauth2/token"
VERSIONS_PATH = "/services/data/"
# The newest API version this client was checked against (Spring '26), and the one it uses when
# the org does not list its versions. An explicit `api_version` setting overrides both.
NEWEST_VERSION = "66.0"
FALLBACK_VERSION = "59.0"


def choose_version(listed: object) -> str | None:
    """The newest version a `GET /services/data/` answer lists, up to `NEWEST_VERSION`."""
    if not isinstance(listed, list):
        return None
    found: list[tuple[int, str]] = []
    for entry in listed:
        version = entry.get("version") if isinstance(entry, dict) else None
        match = re.fullmatch(r"(\d{2,3})\.0", str(version or ""))
        if match and int(match.group(1)) <= int(float(NEWEST_VERSION)):
            found.append((int(match.group(1)), match.group(0)))
    return max(found)[1] if found else None


JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME = timedelta(minutes=3)  # Salesforce accepts an assertion for at most 3 minutes


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What the OAuth token endpoint answered: the bearer token and the org's API address."""

    value: str = field(repr=False)
    instance_url: str


def jwt_audience(settings: SalesforceSettings) -> str:
    """The JWT's `aud`: the setting, else test.salesforce.com for sandboxes, else login."""
    if settings.jwt_audience:
        return settings.jwt_audience
    host = urlsplit(settings.login_url).hostname or ""
    sandbox = host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com")
    return "https://test.salesforce.com" if sandbox else "https://login.salesforce.com"


def token_request(settings: SalesforceSettings) -> dict[str, str]:
    """The form posted to the token endpoint for the configured OAuth 2.0 flow.

    jwt: an RS256-signed assertion (iss the connected app's consumer key, sub the integration
    user's username, aud the login server, exp three minutes on). client_credentials: the
    connected app's key and secret (the app names its run-as user). password: the OAuth
    username-password flow through a connected app (never SOAP `login()`), the least preferred.
    """
    secret = SalesforceSettings.secret
    key = secret(settings.consumer_key)

    def missing(*names: str) -> AuthenticationFailed:
        return AuthenticationFailed(
            "INVALID_SETTINGS",
            f"auth={settings.auth} needs {', '.join(names)} (GOVERNANCE_SALESFORCE__*)",
        )

    if settings.auth == "jwt":
        if not key or not settings.username or settings.private_key_file is None:
            raise missing("consumer_key", "username", "private_key_file")
        import jwt

        try:
            private_key = settings.private_key_file.read_bytes()
        except OSError as exc:
            raise AuthenticationFailed(
                "INVALID_SETTINGS", f"cannot read private_key_file: {exc.strerror}"
            ) from None
        claims = {
            "iss": key,
            "sub": settings.username,
            "aud": jwt_audience(settings),
            "exp": int((datetime.now(UTC) + JWT_LIFETIME).timestamp()),
        }
        try:
            assertion = jwt.encode(claims, private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            raise AuthenticationFailed(
                "INVALID_SETTINGS", "private_key_file is not an RSA private key (PEM)"
            ) from None
        return {"grant_type": JWT_GRANT, "assertion": assertion}
    consumer_secret = secret(settings.consumer_secret)
    if settings.auth == "client_credentials":
        if not key or not consumer_secret:
            raise missing("consumer_key", "consumer_secret")
        return {
            "grant_type": "client_credentials",
            "client_id": key,
            "client_secret": consumer_secret,
        }
    password = secret(settings.password)
    if not key or not consumer_secret or not settings.username or not password:
        raise missing("consumer_key", "consumer_secret", "username", "password")
    return {
        "grant_type": "password",
        "client_id": key,
        "client_secret": consumer_secret,
        "username": settings.username,
        # Salesforce wants the security token appended, unless the org trusts our address.
        "password": password + (secret(settings.security_token) or ""),
    }


class _OrgSession(requests.Session):
    """A requests session with a timeout on every call, that holds the access token.

    It gets the token from the OAuth token endpoint, sends it on every API call, and on a 401
    INVALID_SESSION_ID gets a new one and sends the call again, once. simple-salesforce builds
    `https://` API URLs; they go out over plain HTTP only when the login URL itself is `http://`
    (a fake org, on loopback or another host of a test network) and the call is for that host or
    for the `http://` instance URL its token endpoint named. A real org is HTTPS throughout.
    """

    def __init__(self, settings: SalesforceSettings) -> None:
        super().__init__()
        self.settings = settings
        self.timeout = settings.timeout_seconds
        self.login_origin = settings.login_url.rstrip("/")
        self.usage: ApiUsage | None = None
        self.token: AccessToken | None = None
        self._renewing = threading.Lock()

    def authenticate(self) -> AccessToken:
        """A new access token from the token endpoint (AuthenticationFailed when refused)."""
        form = token_request(self.settings)
        response = super().request(
            "POST",
            self.login_origin + TOKEN_PATH,
            data=form,
            headers={"Accept": "application/json"},
            timeout=self.timeout,
        )
        if response.status_code >= 500 or response.status_code == 429:
            # The org is down or busy, not refusing us: try again later.
            raise Unavailable(
                f"HTTP_{response.status_code}",
                "the token endpoint could not answer",
                response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise AuthenticationFailed(
                f"HTTP_{response.status_code}", "no JSON from the token endpoint"
            )
        if response.status_code != 200 or not body.get("access_token"):
            # {"error": "invalid_grant", "error_description": "authentication failure"}
            raise AuthenticationFailed(
                str(body.get("error") or f"HTTP_{response.status_code}"),
                str(body.get("error_description") or "")[:500],
                response.status_code,
            )
        self.token = AccessToken(str(body["access_token"]), str(body.get("instance_url") or ""))
        return self.token

    def _plain_http(self, target: str) -> bool:
        """Whether an `https://` URL simple-salesforce built is meant as plain HTTP."""
        if urlsplit(self.login_origin).scheme != "http":
            return False
        origins = [self.login_origin]
        if self.token is not None and self.token.instance_url.startswith("http://"):
            origins.append(self.token.instance_url)
        parts = urlsplit(target)
        return any(
            (parts.hostname, parts.port) == (o.hostname, o.port) for o in map(urlsplit, origins)
        )

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        target = url.decode() if isinstance(url, bytes) else url
        if target.startswith("https://") and self._plain_http(target):
            target = "http://" + target[len("https://") :]
        kwargs.setdefault("timeout", self.timeout)
        verb = method.decode() if isinstance(method, bytes) else method
        sent = self.token
        response = super().request(verb, target, *args, **_bearer(kwargs, sent))
        if response.status_code == 401 and sent is not None and _invalid_session(response):
            with self._renewing:  # one renewal for every call that met the expired token
                if self.token is sent:
                    self.authenticate()
            response = super().request(verb, target, *args, **_bearer(kwargs, self.token))
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self.usage = usage
        return response


def _host(url: str) -> str:
    """The host (and port, unless 443) of a URL, as simple-salesforce addresses it."""
    parts = urlsplit(url)
    return (parts.hostname or "") + (f":{parts.port}" if parts.port not in (None, 443) else "")


def _bearer(kwargs: dict[str, Any], token: AccessToken | None) -> dict[str, Any]:
    """The call's keyword arguments with the current token as its Authorization header."""
    if token is None:
        return kwargs
    headers = dict(kwargs.get("headers") or {})
    headers["Authorization"] = f"Bearer {token.value}"
    return {**kwargs, "headers": headers}


def _invalid_session(response: requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    # Documented as a list of errors; a lone error object is read the same way.
    first = body[0] if isinstance(body, list) and body else body
    return isinstance(first, dict) and first.get("errorCode") == "INVALID_SESSION_ID"


def _error(exc: Exception) -> SalesforceError:
    """Our typed error for whatever simple-salesforce or requests raised."""
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed
    from simple_salesforce.exceptions import SalesforceError as SimpleError

    if isinstance(exc, SalesforceError):
        return exc
    if isinstance(exc, requests.Timeout):
        return Unavailable("TIMEOUT", "Salesforce did not answer in time")
    if isinstance(exc, requests.RequestException):
        return Unavailable("NETWORK", type(exc).__name__)
    if isinstance(exc, SalesforceAuthenticationFailed):
        return AuthenticationFailed("AUTHENTICATION_FAILED", str(exc.code))
    if isinstance(exc, SimpleError):
        content = exc.content
        # A list of errors, as documented (a lone error object is read the same way).
        item: Any = content[0] if isinstance(content, list) and content else content
        first: dict[str, Any] = item if isinstance(item, dict) else {}
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
    for name, value in record.items():
        if isinstance(value, dict) and all(v is None for v in value.values()):
            record[name] = None  # no related record: null, as the REST API renders it
    return record


class SimpleSalesforceClient(SalesforceClient):
    """`SalesforceClient` over simple-salesforce, authenticated as the settings say."""

    def __init__(self, settings: SalesforceSettings) -> None:
        from simple_salesforce.api import Salesforce

        self.settings = settings
        self._session = _OrgSession(settings)
        try:
            token = self._session.authenticate()
            self._sf = Salesforce(
                instance_url=token.instance_url,
                session_id=token.value,  # the session replaces it with the current token
                session=self._session,
                version=settings.api_version or self._negotiate(token),
                parse_float=Decimal,
            )
        except Exception as exc:
            raise _error(exc) from None

    def _negotiate(self, token: AccessToken) -> str:
        """The API version to call: the newest the org lists (`GET /services/data/`, the
        Versions resource) up to `NEWEST_VERSION`; `FALLBACK_VERSION` when it lists none."""
        try:
            response = self._session.request(
                "GET", "https://" + _host(token.instance_url) + VERSIONS_PATH
            )
            listed = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError):
            listed = None
        return choose_version(listed) or FALLBACK_VERSION

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
            # utf-8-sig: a byte order mark, if the org sends one, is not part of the first name.
            text = io.TextIOWrapper(response.raw, encoding="utf-8-sig", newline="")
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
