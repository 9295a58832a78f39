"""Who is calling: the verified identity every service function receives."""

from __future__ import annotations

from dataclasses import dataclass

from governance.auth.schemas import Role


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int | None
    name: str
    role: Role
    groups: frozenset[str]
    # The Salesforce user an `integration` key acts for (its `X-Acting-User` header, 18 chars).
    acting_user: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller: `key:<id>:<name>`, with ` for sf:<user Id>` when
        an integration key acts for a Salesforce user."""
        name = f"key:{self.key_id}:{self.name}" if self.key_id is not None else self.name
        return f"{name} for sf:{self.acting_user}" if self.acting_user else name

    def in_group(self, group: str) -> bool:
        return group in self.groups


# The command line acts as an administrator of the machine it runs on.
SYSTEM = Principal(key_id=None, name="cli", role=Role.admin, groups=frozenset())
