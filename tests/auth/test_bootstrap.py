"""The first admin key: printed once on first start, or taken from the environment."""

from __future__ import annotations

import pytest

from governance.auth import service as auth_service
from governance.auth.principal import SYSTEM
from governance.auth.schemas import Role
from governance.db import Database
from governance.errors import InvalidInput


def test_first_start_creates_one_admin_key(db: Database) -> None:
    with db.unit_of_work() as session:
        secret = auth_service.ensure_admin_key(session, SYSTEM, None)
    assert secret is not None
    with db.unit_of_work() as session:
        assert auth_service.ensure_admin_key(session, SYSTEM, None) is None  # never printed again
        principal = auth_service.verify(session, secret)
    assert principal is not None
    assert principal.role is Role.admin


def test_configured_bootstrap_key_becomes_the_admin_key(db: Database) -> None:
    chosen = "gov_my-script-admin-key-123456"
    with db.unit_of_work() as session:
        assert auth_service.ensure_admin_key(session, SYSTEM, chosen) is None
    with db.unit_of_work() as session:
        assert auth_service.ensure_admin_key(session, SYSTEM, chosen) is None  # idempotent
        principal = auth_service.verify(session, chosen)
    assert principal is not None
    assert principal.role is Role.admin


def test_short_bootstrap_key_is_refused(db: Database) -> None:
    with pytest.raises(InvalidInput, match="16 characters"), db.unit_of_work() as session:
        auth_service.ensure_admin_key(session, SYSTEM, "short")
