"""The fake org's in-memory state, which every part of ``FakeSalesforce`` shares, and the
records it keeps of what happened (tokens, requests, faults)."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from fake_salesforce.clock import FakeClock
from fake_salesforce.ids import DEFAULT_USER_ID, INTEGRATION_USER_ID, ORG_ID, id18
from fake_salesforce.schema import DEFAULT_CUSTOM_FIELDS, Record, Schema
from fake_salesforce.soql import FieldRef

if TYPE_CHECKING:
    from fake_salesforce.server import Server


class FiredFault(NamedTuple):
    """A fault that actually happened: an injected one, or a rejected record (``record_id``)."""

    kind: str
    fault: str
    record_id: str | None = None


class IssuedToken(NamedTuple):
    access_token: str
    grant_type: str  # password, client_credentials, jwt-bearer, soap, direct
    user_id: str
    username: str | None


class LoggedRequest(NamedTuple):
    method: str
    path: str
    kind: str
    status: int
    soql: str | None


@dataclass
class Fault:
    kind: str
    fault: str
    remaining: int | None
    after: int
    seen: int = 0


@dataclass
class Rejection:
    status_code: str
    message: str
    fields: list[str]
    remaining: int | None


@dataclass
class Cursor:
    rows: list[Record]
    select: list[FieldRef]
    batch: int


class OrgState:
    """Configuration and state, guarded by one lock (``FakeSalesforce`` adds the server)."""

    _server: Server

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
        self.api_version = api_version
        self.org_id = ORG_ID
        self.batch_size = batch_size
        """Records per query page (Salesforce: 2,000). ``Sforce-Query-Options: batchSize=n``
        lowers it per request (200..2,000, as documented)."""
        self.daily_limit = daily_limit
        self.timeout_sleep = timeout_sleep
        """How long a ``"timeout"`` fault holds the response (make it exceed the client's)."""
        self.integration_user_id = id18(integration_user_id)
        """The user id tokens act as: API updates set LastModifiedById to it."""
        self.default_user_id = DEFAULT_USER_ID
        """The user id Python-API edits are attributed to unless ``by_user_id`` is given."""
        self.max_cursors = 10
        """Open query cursors kept; opening another releases the oldest (as Salesforce does)."""
        self.clock = clock or FakeClock()
        # Credentials the token endpoints check; None accepts anything.
        self.username: str | None = None
        self.password: str | None = None
        self.security_token: str | None = None
        self.consumer_key: str | None = None
        self.consumer_secret: str | None = None
        self.jwt_public_key: bytes | None = None
        """The connected app's certificate or public key (PEM). When set, a JWT bearer
        assertion must be RS256-signed by its key, with ``aud`` the login server
        (https://login.salesforce.com, https://test.salesforce.com or this org's URL) and an
        ``exp`` still ahead; when None, any syntactically valid JWT will do."""

        self._schema = Schema(DEFAULT_CUSTOM_FIELDS if custom_fields is None else custom_fields)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._records: dict[str, Record] = {}
        self._purged: set[str] = set()
        self._account_ids: dict[str, str] = {}
        self._counters: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._api_usage = 0
        self._tokens: dict[str, str] = {}  # live access token -> user id
        self._issued: list[IssuedToken] = []
        self._faults: list[Fault] = []
        self._fired: list[FiredFault] = []
        self._rejections: dict[str, Rejection] = {}
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._log: deque[LoggedRequest] = deque(maxlen=2000)
        self._internal_errors: list[str] = []
        self._writes: list[tuple[str, dict[str, Any]]] = []  # (Id, fields) per record updated

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the login URL and the instance URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"
