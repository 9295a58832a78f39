"""The Python API to the org's records: create, edit, delete and read opportunities as a user
would (not counted as API calls)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from fake_salesforce.ids import id18, make_id
from fake_salesforce.schema import CLOSED_STAGES, BadValue, Record, coerce, no_such_column
from fake_salesforce.state import OrgState


class RecordsMixin(OrgState):
    """Opportunities in memory; records are never mutated in place (an edit stores a new dict)."""

    def add_opportunities(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        by_user_id: str | None = None,
        same_stamp: bool = False,
    ) -> list[str]:
        """Create opportunities; returns their 18-character Ids (prefix ``006``).

        Field names are API names, case-insensitive. Relationship values go in as
        ``"Account.BillingCountry": "FR"`` or ``"Account": {"Name": ..., "BillingCountry": ...}``
        (an AccountId is made up, one per account Name). Datetimes and dates may be objects or
        strings. Missing fields get defaults (Name, StageName Prospecting, CloseDate in 30 days,
        OwnerId, CurrencyIsoCode USD, checkboxes false); IsClosed / IsWon follow StageName unless
        given. CreatedDate, LastModifiedDate and SystemModstamp come from ``clock.stamp()`` —
        one stamp per record, or one for the whole call with ``same_stamp=True`` (a single DML)
        — unless given explicitly.
        """
        user = id18(by_user_id) if by_user_id else self.default_user_id
        prepared = [self._normalize_input(dict(r), creating=True) for r in records]
        with self._lock:
            shared = self.clock.stamp() if same_stamp and prepared else None
            created: dict[str, Record] = {}
            for values, account in prepared:
                record = self._new_record(values, account, shared or self.clock.stamp(), user)
                if record["Id"] in created:
                    raise ValueError(f"duplicate Id: {record['Id']}")
                created[record["Id"]] = record
            self._records.update(created)  # all or nothing
        return list(created)

    def add_opportunity(self, record: Mapping[str, Any] | None = None, **fields: Any) -> str:
        """One opportunity (``add_opportunities`` for a single record); returns its Id."""
        return self.add_opportunities([{**(record or {}), **fields}])[0]

    def update_opportunity(
        self, id: str, fields: Mapping[str, Any], by_user_id: str | None = None
    ) -> Record:
        """Edit as a user would (default: ``default_user_id``). Bumps SystemModstamp and
        LastModifiedDate to ``clock.stamp()`` (unless given), sets LastModifiedById, re-derives
        IsClosed / IsWon from a new StageName. Returns a copy of the new record."""
        values, account = self._normalize_input(dict(fields), creating=False)
        user = id18(by_user_id) if by_user_id else self.default_user_id
        with self._lock:
            old = self._live_record(id)
            new = self._changed(old, values, account, user, self.clock.stamp())
            self._records[new["Id"]] = new
            return _copy_record(new)

    def delete_opportunity(
        self, id: str, *, by_user_id: str | None = None, hard: bool = False
    ) -> None:
        """Soft-delete (IsDeleted true, stamp bumped: visible only to queryAll), or with
        ``hard=True`` purge it as if emptied from the recycle bin (gone even from queryAll)."""
        user = id18(by_user_id) if by_user_id else self.default_user_id
        with self._lock:
            old = self._live_record(id)
            if hard:
                del self._records[old["Id"]]
                self._purged.add(old["Id"])
                return
            self._records[old["Id"]] = self._changed(
                old, {"IsDeleted": True}, None, user, self.clock.stamp()
            )

    def get(self, id: str) -> Record:
        """A copy of the stored record (deleted ones too): API field names, datetimes as aware
        UTC ``datetime``, dates as ``date``, the account as ``"Account": {"Id", "Name", ...}``
        or None. Raises KeyError for an unknown Id."""
        with self._lock:
            return _copy_record(self._records[id18(id)])

    def records(self, *, include_deleted: bool = True) -> list[Record]:
        """Copies of all records in creation order."""
        with self._lock:
            return [
                _copy_record(r)
                for r in self._records.values()
                if include_deleted or not r["IsDeleted"]
            ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def _live_record(self, id: str) -> Record:
        record = self._records.get(id18(id))
        if record is None:
            raise KeyError(id)
        if record["IsDeleted"]:
            raise ValueError(f"opportunity {id} is deleted")
        return record

    def _normalize_input(
        self, fields: dict[str, Any], *, creating: bool
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        values: dict[str, Any] = {}
        account: dict[str, Any] | None = None
        for key, value in fields.items():
            if key == "attributes":
                continue
            if key.lower() == "account" and (value is None or isinstance(value, Mapping)):
                if value is None:
                    values["AccountId"] = None
                    continue
                account = {} if account is None else account
                for sub_key, sub_value in value.items():
                    if sub_key != "attributes":
                        account.update(self._account_value(sub_key, sub_value))
                continue
            if "." in key:
                relationship, _, name = key.partition(".")
                if relationship.lower() != "account":
                    raise ValueError(f"Didn't understand relationship '{relationship}'")
                account = {} if account is None else account
                account.update(self._account_value(name, value))
                continue
            spec = self._schema.opportunity_field(key)
            if spec is None:
                raise ValueError(no_such_column(key, "Opportunity"))
            if spec.name == "Id" and not creating:
                raise ValueError("the Id of a record cannot change")
            try:
                values[spec.name] = coerce(spec, value)
            except BadValue as exc:
                raise ValueError(f"{spec.name}: {exc}") from None
        return values, account

    def _account_value(self, name: str, value: Any) -> dict[str, Any]:
        spec = self._schema.account_field(name)
        if spec is None:
            raise ValueError(no_such_column(name, "Account"))
        try:
            return {spec.name: coerce(spec, value)}
        except BadValue as exc:
            raise ValueError(f"Account.{spec.name}: {exc}") from None

    def _next_id(self, prefix: str) -> str:
        while True:
            self._counters[prefix] += 1
            candidate = make_id(prefix, self._counters[prefix])
            if candidate not in self._records and candidate not in self._purged:
                return candidate

    def _account_for(self, account: dict[str, Any], account_id: str | None) -> dict[str, Any]:
        account = dict(account)
        account_id = account.get("Id") or account_id
        name = account.get("Name")
        if account_id is None:
            if name is not None and name in self._account_ids:
                account_id = self._account_ids[name]
            else:
                account_id = self._next_id("001")
        if name is not None:
            self._account_ids.setdefault(name, account_id)
        account["Id"] = account_id
        return account

    def _new_record(
        self, values: dict[str, Any], account: dict[str, Any] | None, stamp: datetime, user: str
    ) -> Record:
        record: Record = dict.fromkeys(self._schema.opportunity)
        for name, spec in self._schema.opportunity.items():
            if spec.type == "boolean":
                record[name] = False
        number = self._counters["006"] + 1
        record.update(
            Name=f"Opportunity {number}",
            StageName="Prospecting",
            CloseDate=(self.clock.now() + timedelta(days=30)).date(),
            OwnerId=self.default_user_id,
            CurrencyIsoCode="USD",
            CreatedById=user,
            LastModifiedById=user,
        )
        record.update(values)
        given_id = values.get("Id")
        if given_id is not None:
            if not given_id.startswith("006") or len(given_id) != 18:
                raise ValueError(f"not an Opportunity Id: {given_id}")
            if given_id in self._records or given_id in self._purged:
                raise ValueError(f"duplicate Id: {given_id}")
        else:
            record["Id"] = self._next_id("006")
        for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            if values.get(name) is None:
                record[name] = stamp
        closed, won = CLOSED_STAGES.get(str(record["StageName"]).lower(), (False, False))
        if "IsClosed" not in values:
            record["IsClosed"] = closed
        if "IsWon" not in values:
            record["IsWon"] = won
        if account is not None:
            record["Account"] = self._account_for(account, record.get("AccountId"))
            record["AccountId"] = record["Account"]["Id"]
        elif record.get("AccountId") is not None:
            record["Account"] = {"Id": record["AccountId"]}
        else:
            record["Account"] = None
        return record

    def _changed(
        self,
        old: Record,
        values: Mapping[str, Any],
        account: dict[str, Any] | None,
        user: str,
        stamp: datetime,
    ) -> Record:
        new = dict(old)
        new.update(values)
        if "AccountId" in values and values["AccountId"] != old.get("AccountId"):
            new["Account"] = None if values["AccountId"] is None else {"Id": values["AccountId"]}
        if account:
            merged = {**(new.get("Account") or {}), **account}
            new["Account"] = self._account_for(merged, new.get("AccountId"))
            new["AccountId"] = new["Account"]["Id"]
        if "StageName" in values and "IsClosed" not in values and "IsWon" not in values:
            new["IsClosed"], new["IsWon"] = CLOSED_STAGES.get(
                str(new["StageName"]).lower(), (False, False)
            )
        new["SystemModstamp"] = values.get("SystemModstamp") or stamp
        new["LastModifiedDate"] = values.get("LastModifiedDate") or stamp
        new["LastModifiedById"] = values.get("LastModifiedById") or user
        return new


def _copy_record(record: Record) -> Record:
    copy = dict(record)
    if isinstance(copy.get("Account"), dict):
        copy["Account"] = dict(copy["Account"])
    return copy
