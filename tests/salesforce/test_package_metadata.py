"""The Salesforce package (salesforce/) and the sync's default mapping agree: every custom field
the mapping reads or writes has its field metadata, of a type the mapping accepts, and the
permission sets grant it; and the package ships no governance field the mapping leaves out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from governance.salesforce import mapping as sync_mapping

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "salesforce" / "force-app" / "main" / "default"
FIELDS = DEFAULT / "objects" / "Opportunity" / "fields"
PERMISSION_SETS = DEFAULT / "permissionsets"
EXAMPLE = ROOT / "src" / "governance" / "salesforce" / "mapping.example.yaml"
DEMO_PLAYBOOK = ROOT / "src" / "governance" / "demo" / "standard.yaml"
NS = {"md": "http://soap.sforce.com/2006/04/metadata"}

# The describe type Salesforce reports for each CustomField <type> the package uses.
DESCRIBE_TYPE = {
    "Checkbox": "boolean",
    "Currency": "currency",
    "Number": "double",
    "Percent": "percent",
    "Picklist": "picklist",
    "Text": "string",
    "Url": "url",
}
# Standard Opportunity and Account fields the mapping reads, with their documented types.
STANDARD: dict[str, dict[str, dict[str, Any]]] = {
    "Opportunity": {
        "Name": {"type": "string"},
        "Amount": {"type": "currency"},
        "CurrencyIsoCode": {"type": "picklist"},
        "StageName": {"type": "picklist"},
        "CloseDate": {"type": "date"},
        "OwnerId": {"type": "reference"},
        "AccountId": {
            "type": "reference",
            "relationshipName": "Account",
            "referenceTo": ["Account"],
        },
    },
    "Account": {"BillingCountry": {"type": "string"}},
}


def package_fields() -> dict[str, ET.Element]:
    return {
        path.name.removesuffix(".field-meta.xml"): ET.parse(path).getroot()
        for path in FIELDS.glob("*.field-meta.xml")
    }


def text(element: ET.Element, tag: str) -> str | None:
    found = element.find(f"md:{tag}", NS)
    return None if found is None else found.text


def describe(sobject: str) -> dict[str, Any]:
    """The describe result an org with the package deployed gives (the fields that matter)."""
    fields = [{"name": name, **props} for name, props in STANDARD[sobject].items()]
    if sobject == "Opportunity":
        for name, element in package_fields().items():
            kind = text(element, "type") or ""
            entry: dict[str, Any] = {"name": name, "type": DESCRIBE_TYPE[kind], "updateable": True}
            if kind == "Picklist":
                entry["picklistValues"] = [
                    {"value": v.text}
                    for v in element.iterfind(".//md:valueSetDefinition/md:value/md:fullName", NS)
                ]
            fields.append(entry)
    return {"name": sobject, "fields": fields}


def term_kinds() -> dict[str, str]:
    document = yaml.safe_load(DEMO_PLAYBOOK.read_text(encoding="utf-8"))
    return {term["key"]: term["kind"] for term in document["terms"]}


@pytest.fixture(scope="module")
def default_mapping() -> sync_mapping.SyncMapping:
    return sync_mapping.load(EXAMPLE)


def custom(names: list[str]) -> set[str]:
    return {name for name in names if name.endswith("__c") and "." not in name}


def test_every_field_the_mapping_names_is_in_the_package_with_a_type_it_accepts(
    default_mapping: sync_mapping.SyncMapping,
) -> None:
    problems = sync_mapping.check_against(default_mapping, describe, term_kinds())
    assert [(p.loc, p.message) for p in problems] == []


def test_the_package_has_no_governance_field_the_mapping_leaves_out(
    default_mapping: sync_mapping.SyncMapping,
) -> None:
    assert set(package_fields()) == custom(default_mapping.source_fields())


def test_picklist_values_are_the_ones_the_mapping_translates(
    default_mapping: sync_mapping.SyncMapping,
) -> None:
    for key, source in default_mapping.terms.items():
        element = package_fields().get(source.field)
        if element is not None and text(element, "type") == "Picklist":
            values = {
                v.text
                for v in element.iterfind(".//md:valueSetDefinition/md:value/md:fullName", NS)
            }
            assert values == set(source.values or {}), key


def field_permissions(permission_set: str) -> dict[str, tuple[bool, bool]]:
    root = ET.parse(PERMISSION_SETS / f"{permission_set}.permissionset-meta.xml").getroot()
    return {
        (text(fp, "field") or "").removeprefix("Opportunity."): (
            text(fp, "readable") == "true",
            text(fp, "editable") == "true",
        )
        for fp in root.iterfind("md:fieldPermissions", NS)
    }


def test_reps_read_every_governance_field_and_edit_only_the_terms(
    default_mapping: sync_mapping.SyncMapping,
) -> None:
    granted = field_permissions("Deal_Governance_Rep")
    inputs = custom([s.field for s in default_mapping.terms.values()])
    inputs |= custom([default_mapping.submit_field or ""])
    outputs = custom(list(default_mapping.outputs.values()))
    assert set(granted) == inputs | outputs
    assert {name for name, (read, _edit) in granted.items() if read} == inputs | outputs
    # The What-if tab's Apply writes the terms; the results are the service's alone.
    assert {name for name, (_read, edit) in granted.items() if edit} == inputs


def test_the_integration_user_edits_every_field_the_service_writes(
    default_mapping: sync_mapping.SyncMapping,
) -> None:
    granted = field_permissions("Deal_Governance_Integration")
    outputs = custom(list(default_mapping.outputs.values()))
    assert {name for name, (_read, edit) in granted.items() if edit} == outputs
    assert {name for name, (read, _edit) in granted.items() if read} == custom(
        default_mapping.source_fields()
    )


def test_the_component_edits_the_fields_the_mapping_reads_for_each_term(
    default_mapping: sync_mapping.SyncMapping,
) -> None:
    """The What-if tab writes each term to the field the sync reads it from."""
    source = (DEFAULT / "lwc" / "dealGovernance" / "termFields.js").read_text(encoding="utf-8")
    body = source.split("TERM_FIELDS = {", 1)[1].split("};", 1)[0]
    entries = [part.split(":") for part in body.replace("\n", "").split(",") if ":" in part]
    pairs = {key.strip(): field.strip().strip("'\"") for key, field in entries}
    expected = {key: s.field for key, s in default_mapping.terms.items()}
    assert pairs == expected


OUTBOUND = ROOT / "salesforce" / "outbound-message" / "workflows" / "Opportunity.workflow"


def test_the_outbound_message_watches_the_fields_the_sync_reads_and_only_those(
    default_mapping: sync_mapping.SyncMapping,
) -> None:
    root = ET.parse(OUTBOUND).getroot()
    message = root.find("md:outboundMessages", NS)
    assert message is not None
    endpoint = text(message, "endpointUrl") or ""
    assert endpoint.split("?")[0].endswith("/v1/salesforce/outbound-messages")
    assert "secret=" in endpoint
    assert [f.text for f in message.iterfind("md:fields", NS)] == ["Id"]
    rule = root.find("md:rules", NS)
    assert rule is not None
    formula = text(rule, "formula") or ""
    watched = set(re.findall(r"ISCHANGED\((\w+)\)", formula))
    inputs = custom([s.field for s in default_mapping.terms.values()])
    # The service's own write-backs must not fire it: only the inputs are watched.
    assert watched == inputs | custom([default_mapping.submit_field or ""])
