"""The fake org's clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from fake_salesforce.ids import as_datetime, truncate_ms

_MS = timedelta(milliseconds=1)


class FakeClock:
    """The org's clock: SystemModstamp, CreatedDate, token ``issued_at`` and the ``Date`` header.

    By default it follows the wall clock. ``set()`` freezes it at a moment; ``advance()`` moves
    it (frozen or not); ``unfreeze()`` lets it run again from where it stands. ``stamp()`` hands
    out modification stamps that are strictly increasing (at least 1 ms apart) even when several
    changes land within the same millisecond or the clock is set backwards.
    """

    def __init__(self, start: datetime | str | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None if start is None else as_datetime(start)
        self._offset = timedelta(0)
        self._last: datetime | None = None

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen is not None

    @property
    def last_stamp(self) -> datetime | None:
        """The latest stamp handed out, if any."""
        with self._lock:
            return self._last

    def _now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return truncate_ms(datetime.now(UTC) + self._offset)

    def now(self) -> datetime:
        """The current time, UTC, truncated to milliseconds."""
        with self._lock:
            return self._now()

    def set(self, when: datetime | str) -> None:
        """Freeze the clock at ``when``."""
        with self._lock:
            self._frozen = as_datetime(when)

    def advance(self, by: float | timedelta) -> datetime:
        """Move the clock forward by ``by`` (seconds or a timedelta); returns the new time."""
        delta = by if isinstance(by, timedelta) else timedelta(seconds=by)
        with self._lock:
            if self._frozen is not None:
                self._frozen = truncate_ms(self._frozen + delta)
            else:
                self._offset += delta
            return self._now()

    def unfreeze(self) -> None:
        """Follow the wall clock again, keeping the current reading as the starting point."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
                self._frozen = None

    def stamp(self) -> datetime:
        """The next modification stamp: ``now()``, or 1 ms after the previous stamp if later."""
        with self._lock:
            value = self._now()
            if self._last is not None and value <= self._last:
                value = self._last + _MS
            self._last = value
            return value
