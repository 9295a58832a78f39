"""sObject describe, retrieve, and sObject Collections updates with per-record results."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fake_salesforce.ids import ID_RE, id18
from fake_salesforce.query import render
from fake_salesforce.records import RecordsMixin
from fake_salesforce.responses import NOT_FOUND_MESSAGE, Response, error_response, json_response
from fake_salesforce.schema import BadValue, Record, coerce, no_such_column
from fake_salesforce.soql import FieldRef
from fake_salesforce.state import FiredFault

_MAX_COLLECTION = 200


@dataclass
class _Failure:
    result: dict[str, Any]


class SObjectsMixin(RecordsMixin):
    """The sObject resources: describe, retrieve one record, update up to 200 at once."""

    def _describe(self, sobject: str, version: str) -> Response:
        if sobject.lower() == "opportunity":
            name, plural, prefix, fields = (
                "Opportunity",
                "Opportunities",
                "006",
                self._schema.opportunity,
            )
        elif sobject.lower() == "account":
            name, plural, prefix, fields = "Account", "Accounts", "001", self._schema.account
        else:
            return error_response(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        base = f"/services/data/v{version}/sobjects/{name}"
        return json_response(
            200,
            {
                "name": name,
                "label": name,
                "labelPlural": plural,
                "keyPrefix": prefix,
                "custom": False,
                "createable": True,
                "updateable": True,
                "deletable": True,
                "undeletable": True,
                "queryable": True,
                "retrieveable": True,
                "searchable": True,
                "triggerable": True,
                "replicateable": True,
                "layoutable": True,
                "childRelationships": [],
                "recordTypeInfos": [],
                "urls": {
                    "sobject": base,
                    "describe": f"{base}/describe",
                    "rowTemplate": f"{base}/{{ID}}",
                },
                "fields": [spec.describe() for spec in fields.values()],
            },
        )

    def _retrieve(self, record_id: str, fields: str | None, version: str) -> Response:
        with self._lock:
            record = self._records.get(id18(record_id))
            purged = id18(record_id) in self._purged
        if purged or (record is not None and record["IsDeleted"]):
            return error_response(404, "ENTITY_IS_DELETED", "entity is deleted")
        if record is None:
            return error_response(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        select: list[FieldRef] = []
        names = [n.strip() for n in fields.split(",")] if fields else []
        for name in names or list(self._schema.opportunity):
            spec = self._schema.opportunity_field(name)
            if spec is None:
                return error_response(400, "INVALID_FIELD", no_such_column(name, "Opportunity"))
            select.append(FieldRef(None, spec))
        return json_response(200, render(record, select, version))

    # ---------------------------------------------------------------- sObject Collections
    def _collections(self, body: bytes, user_id: str) -> Response:
        try:
            payload = json.loads(body or b"null")
        except ValueError as exc:
            return error_response(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}")
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            return error_response(400, "JSON_PARSER_ERROR", "The request body needs a records list")
        all_or_none = payload.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            return error_response(400, "JSON_PARSER_ERROR", "allOrNone must be a boolean")
        items: list[Any] = payload["records"]
        if len(items) > _MAX_COLLECTION:
            return error_response(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        parsed: list[tuple[str | None, dict[str, Any]]] = []
        for item in items:
            if not isinstance(item, dict):
                return error_response(400, "JSON_PARSER_ERROR", "Each record must be an object")
            attributes = item.get("attributes")
            sobject = attributes.get("type") if isinstance(attributes, dict) else None
            if not sobject:
                return error_response(
                    400,
                    "INVALID_TYPE",
                    "When using sObject Collections, each record must have an attributes map "
                    "with a type",
                )
            if str(sobject).lower() != "opportunity":
                return error_response(
                    400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported by the fake"
                )
            record_id: str | None = None
            values: dict[str, Any] = {}
            for key, value in item.items():
                if key == "attributes":
                    continue
                if key.lower() == "id":
                    record_id = value if isinstance(value, str) else None
                    continue
                spec = self._schema.opportunity_field(key)
                if spec is None:
                    return error_response(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{key}' on sobject of type Opportunity",
                    )
                try:
                    values[spec.name] = coerce(spec, value)
                except BadValue as exc:
                    return error_response(400, "JSON_PARSER_ERROR", str(exc))
            parsed.append((record_id, values))

        results: list[dict[str, Any]] = []
        updates: list[tuple[Record, dict[str, Any]]] = []
        with self._lock:
            seen: set[str] = set()
            for record_id, values in parsed:
                outcome = self._check_update(record_id, values, seen)
                if isinstance(outcome, _Failure):
                    results.append(outcome.result)
                    continue
                updates.append((outcome, values))
                results.append({"id": outcome["Id"], "success": True, "errors": []})
            failed = any(not r["success"] for r in results)
            if all_or_none and failed:
                rolled_back = {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the "
                    "request was using AllOrNone header",
                    "fields": [],
                }
                return json_response(
                    200,
                    [
                        r if not r["success"] else {**r, "success": False, "errors": [rolled_back]}
                        for r in results
                    ],
                )
            if updates:
                stamp = self.clock.stamp()  # one DML: one stamp for the whole batch
                for old, values in updates:
                    new = self._changed(old, values, None, user_id, stamp)
                    new["SystemModstamp"] = new["LastModifiedDate"] = stamp
                    new["LastModifiedById"] = user_id
                    self._records[new["Id"]] = new
                    self._writes.append((new["Id"], dict(values)))
        return json_response(200, results)

    def _check_update(
        self, record_id: str | None, values: Mapping[str, Any], seen: set[str]
    ) -> Record | _Failure:
        """The record to update, or the failed result for it."""

        def failure(
            code: str, message: str, fields: Sequence[str] = (), with_id: bool = True
        ) -> _Failure:
            result: dict[str, Any] = {
                "success": False,
                "errors": [{"statusCode": code, "message": message, "fields": list(fields)}],
            }
            if with_id and record_id is not None:
                result = {"id": record_id, **result}
            return _Failure(result)

        if not record_id:
            return failure("MISSING_ARGUMENT", "Id not specified in an update call", with_id=False)
        if not ID_RE.fullmatch(record_id) or not record_id.startswith("006"):
            return failure(
                "MALFORMED_ID",
                f"Opportunity ID: id value of incorrect type: {record_id}",
                ["Id"],
                with_id=False,
            )
        record_id = id18(record_id)
        if record_id in seen:
            return failure("DUPLICATE_VALUE", f"Duplicate id in list: {record_id}")
        seen.add(record_id)
        record = self._records.get(record_id)
        if record_id in self._purged or (record is not None and record["IsDeleted"]):
            return failure("ENTITY_IS_DELETED", "entity is deleted")
        if record is None:
            return failure("NOT_FOUND", NOT_FOUND_MESSAGE)
        rejection = self._rejections.get(record_id)
        if rejection is not None:
            if rejection.remaining is not None:
                rejection.remaining -= 1
                if rejection.remaining <= 0:
                    del self._rejections[record_id]
            self._fired.append(FiredFault("collections", rejection.status_code, record_id))
            return failure(rejection.status_code, rejection.message, rejection.fields)
        read_only = [name for name in values if not self._schema.opportunity[name].updateable]
        if read_only:
            return failure(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                read_only,
            )
        missing = [
            name
            for name, value in values.items()
            if value is None and not self._schema.opportunity[name].nillable
        ]
        if missing:
            return failure(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        for name, value in values.items():
            spec = self._schema.opportunity[name]
            if isinstance(value, str) and spec.length and len(value) > spec.length:
                return failure(
                    "STRING_TOO_LONG",
                    f"{spec.label}: data value too large: {value[:40]} (max length={spec.length})",
                    [name],
                )
        return record
