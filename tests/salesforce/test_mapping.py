"""The mapping file: its own errors name the field at fault; `check_against` and
`governance salesforce validate-mapping` compare it with the org's describe results; and the
`governance sync` commands as an operator runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast, get_args

import pytest
import yaml
from pydantic import SecretStr
from tests.salesforce.conftest import CONSUMER_KEY, CONSUMER_SECRET, MAPPING

from fake_salesforce import DEFAULT_CUSTOM_FIELDS, FakeSalesforce
from governance.playbooks.registry import PlaybookRegistry
from governance.problems import Problem
from governance.salesforce.client import SimpleSalesforceClient
from governance.salesforce.mapping import (
    MappingError,
    OutputKey,
    SyncMapping,
    check_against,
    load,
    parse,
)
from governance.salesforce.outbound import PRODUCED
from governance.settings import Settings

TERMS = {"discount_pct": {"field": "Discount__c"}}
PASSWORD = "Correct-Horse-Battery-4711"
TOKEN = "SecTok0987zyxw"


# --- the file on its own -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        pytest.param(
            {"terms": TERMS, "colour": "red"},
            ("colour",),
            "Extra inputs are not permitted",
            id="unknown-setting",
        ),
        pytest.param(
            {"terms": {"discount_pct": {"field": "Discount c"}}},
            ("terms", "discount_pct", "field"),
            "String should match pattern",
            id="bad-field-name",
        ),
        pytest.param(
            {"terms": {"discount_pct": {"field": "Account.Owner.Name"}}},
            ("terms", "discount_pct", "field"),
            "String should match pattern",
            id="two-hops",
        ),
        pytest.param(
            {"terms": {"discount_pct": {"field": "Discount__c", "valeus": {"A": 1}}}},
            ("terms", "discount_pct", "valeus"),
            "Extra inputs are not permitted",
            id="misspelt-option",
        ),
        pytest.param(
            {"terms": {"Discount %": {"field": "Discount__c"}}},
            ("terms", "Discount %", "[key]"),
            "String should match pattern",
            id="bad-term-key",
        ),
        pytest.param(
            {"terms": TERMS, "attributes": {"flavour": {"field": "Name"}}},
            ("attributes", "flavour"),
            "not a deal attribute; use one of ['name', 'region',",
            id="unknown-attribute",
        ),
        pytest.param(
            {"terms": TERMS, "outputs": {"colour": "Colour__c"}},
            ("outputs", "colour", "[key]"),
            "Input should be 'status', 'variance', 'approvers'",
            id="unknown-output",
        ),
        pytest.param(
            {"terms": TERMS, "outputs": {"status": "Account.Governance_Status__c"}},
            ("outputs", "status"),
            "must be a field of the Opportunity itself",
            id="output-on-a-related-record",
        ),
        pytest.param(
            {"terms": TERMS, "submit_field": "Submit For Approval"},
            ("submit_field",),
            "String should match pattern",
            id="bad-submit-field",
        ),
        pytest.param({"terms": {}}, ("terms",), "at least 1 item", id="no-terms"),
        pytest.param({"attributes": {}}, ("terms",), "Field required", id="terms-missing"),
        pytest.param(
            {"terms": TERMS, "sobject": "Account"},
            ("sobject",),
            "Input should be 'Opportunity'",
            id="other-sobject",
        ),
    ],
)
def test_parse_names_the_field_at_fault(data: Any, loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(MappingError) as raised:
        parse(data)
    assert [p.loc for p in raised.value.problems] == [loc]
    assert message in raised.value.problems[0].message
    assert str(raised.value).startswith(".".join(loc) + ": ")


def test_load_reports_an_unreadable_file(tmp_path: Path) -> None:
    broken = tmp_path / "mapping.yaml"
    broken.write_text("terms:\n  discount_pct: {field: Discount__c\n", encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load(broken)
    assert str(broken) in str(raised.value)
    assert "cannot read the mapping" in str(raised.value)
    with pytest.raises(MappingError, match="cannot read the mapping"):
        load(tmp_path / "missing.yaml")


def test_the_shipped_example_is_valid() -> None:
    example = Path(__file__).parents[2] / "src/governance/salesforce/mapping.example.yaml"
    mapping = load(example)
    assert mapping.terms["discount_pct"].field == "Discount__c"
    assert mapping.attributes["region"].field == "Account.BillingCountry"


# --- against the org ---------------------------------------------------------------------------


@pytest.fixture
def term_kinds(demo_published: None, registry: PlaybookRegistry) -> dict[str, str]:
    """The term keys the published playbooks know, with their kinds (as the CLI reads them)."""
    return {t.key: t.kind for p in registry.load() for t in p.compiled.terms}


@pytest.fixture
def org_with_a_formula() -> Iterator[FakeSalesforce]:
    """An org whose Deal_Desk_Status__c is a formula field: readable, never writable."""
    formula = {"type": "string", "updateable": False, "calculated": True}
    with FakeSalesforce(
        custom_fields={**DEFAULT_CUSTOM_FIELDS, "Deal_Desk_Status__c": formula}
    ) as org:
        yield org
        assert org.internal_errors == []


def client_for(org: FakeSalesforce, settings: Settings) -> SimpleSalesforceClient:
    return SimpleSalesforceClient(settings.salesforce.model_copy(update={"login_url": org.url}))


def problems(found: list[Problem]) -> list[tuple[str, str]]:
    return [(".".join(map(str, p.loc)), p.message) for p in found]


def test_the_test_mapping_matches_the_org(
    mapping: SyncMapping, sf_client: SimpleSalesforceClient, term_kinds: dict[str, str]
) -> None:
    assert term_kinds["discount_pct"] == "number"
    assert check_against(mapping, sf_client.describe, term_kinds) == []


def test_check_against_reports_unknown_fields_type_mismatches_and_read_only_outputs(
    org_with_a_formula: FakeSalesforce, settings: Settings, term_kinds: dict[str, str]
) -> None:
    bad = parse(
        {
            "terms": {
                "discount_pct": {"field": "Uncapped_Liability__c"},  # a checkbox
                "payment_terms_days": {"field": "Payment_Terms__c"},  # no such field
                "support_level": {"field": "Support_Level__c"},
                "rebate_pct": {"field": "Discount__c"},  # no playbook knows this term
            },
            "attributes": {
                "amount": {"field": "Name"},  # text, not a number
                "close_date": {"field": "CloseDate"},
                "region": {"field": "Acount.BillingCountry"},  # relationship mistyped
                "currency": {"field": "Account.Currency__c"},  # no such Account field
                "owner_rep": {"field": "OwnerId"},
            },
            "submit_field": "Amount",  # not a checkbox
            "outputs": {
                "status": "Deal_Desk_Status__c",  # a formula: read-only
                "variance": "Governance_Status__c",  # text, not a number
                "outcome": "IsWon",  # a read-only checkbox
                "approvers": "Governance_Approvers__c",
            },
        }
    )
    found = check_against(bad, client_for(org_with_a_formula, settings).describe, term_kinds)
    assert problems(found) == [
        (
            "terms.discount_pct.field",
            "Uncapped_Liability__c is a boolean field; expected one of ['currency', 'double', "
            "'email', 'id', 'int', 'long', 'percent', 'phone', 'picklist', 'reference', "
            "'string', 'textarea', 'url']",
        ),
        ("terms.payment_terms_days.field", "Opportunity has no field 'Payment_Terms__c'"),
        ("terms.rebate_pct", "no published playbook has this term"),
        (
            "attributes.amount.field",
            "Name is a string field; expected one of ['currency', 'double', 'int', 'long', "
            "'percent']",
        ),
        ("attributes.region.field", "Opportunity has no field 'Acount.BillingCountry'"),
        ("attributes.currency.field", "Opportunity has no field 'Account.Currency__c'"),
        ("submit_field", "Amount is a currency field; expected one of ['boolean']"),
        ("outputs.status", "Deal_Desk_Status__c is read-only for the integration user"),
        (
            "outputs.variance",
            "Governance_Status__c is a string field; expected one of ['currency', 'double', "
            "'int', 'long', 'percent']",
        ),
        (
            "outputs.outcome",
            "IsWon is a boolean field; expected one of ['email', 'id', 'phone', 'picklist', "
            "'reference', 'string', 'textarea', 'url']",
        ),
        ("outputs.outcome", "IsWon is read-only for the integration user"),
    ]


def test_every_output_a_mapping_may_name_is_produced_by_the_push() -> None:
    # A new output key the push does not compute would fail this (and `validate-mapping`).
    assert set(get_args(OutputKey)) == PRODUCED


def test_an_output_the_push_cannot_produce_is_a_problem(
    mapping: SyncMapping, sf_client: SimpleSalesforceClient, term_kinds: dict[str, str]
) -> None:
    produced = PRODUCED - {"concession_cost"}
    found = check_against(mapping, sf_client.describe, term_kinds, produced)
    assert problems(found) == [
        ("outputs.concession_cost", "the service does not produce this output")
    ]
    assert check_against(mapping, sf_client.describe, term_kinds, PRODUCED) == []


# --- the command line ----------------------------------------------------------------------------


def governance(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`governance …` in its own process, stdout not a terminal (as in cron or CI)."""
    command = str(Path(sys.executable).with_name("governance"))
    return subprocess.run(
        [command, *args], env=dict(env), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def cli_env(
    database_url: str, demo_published: None, fake: FakeSalesforce, mapping_file: Path
) -> dict[str, str]:
    """The environment an operator sets: the service's database and the org's connection."""
    fake.password, fake.security_token = PASSWORD, TOKEN
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")}
    return {
        **inherited,
        "GOVERNANCE_DATABASE_URL": database_url,
        "GOVERNANCE_SALESFORCE__LOGIN_URL": fake.url,
        "GOVERNANCE_SALESFORCE__AUTH": "password",
        "GOVERNANCE_SALESFORCE__CONSUMER_KEY": CONSUMER_KEY,
        "GOVERNANCE_SALESFORCE__CONSUMER_SECRET": CONSUMER_SECRET,
        "GOVERNANCE_SALESFORCE__USERNAME": "sync@example.com",
        "GOVERNANCE_SALESFORCE__PASSWORD": PASSWORD,
        "GOVERNANCE_SALESFORCE__SECURITY_TOKEN": TOKEN,
        "GOVERNANCE_SALESFORCE__MAPPING_FILE": str(mapping_file),
        "GOVERNANCE_SALESFORCE__TIMEOUT_SECONDS": "5",
    }


def assert_no_secrets(result: subprocess.CompletedProcess[str]) -> None:
    for secret in (PASSWORD, TOKEN, PASSWORD + TOKEN):
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_validate_mapping_command(
    cli_env: dict[str, str], tmp_path: Path, fake: FakeSalesforce
) -> None:
    terms = cast(dict[str, Any], MAPPING["terms"])
    wrong_types = tmp_path / "wrong.yaml"
    wrong_types.write_text(
        yaml.safe_dump(
            {
                **MAPPING,
                "terms": {**terms, "discount_pct": {"field": "Uncapped_Liability__c"}},
                "attributes": {"region": {"field": "Account.Region__c"}},
            }
        ),
        encoding="utf-8",
    )
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(yaml.safe_dump({"terms": {"discount_pct": {"feild": "X"}}}))
    runs = {
        "good": cli_env,
        "wrong types": {**cli_env, "GOVERNANCE_SALESFORCE__MAPPING_FILE": str(wrong_types)},
        "invalid": {**cli_env, "GOVERNANCE_SALESFORCE__MAPPING_FILE": str(invalid)},
        "bad login": {**cli_env, "GOVERNANCE_SALESFORCE__PASSWORD": PASSWORD + "x"},
    }
    with ThreadPoolExecutor(len(runs)) as pool:  # independent: run them side by side
        futures = {
            name: pool.submit(governance, env, "salesforce", "validate-mapping")
            for name, env in runs.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    for result in results.values():
        assert_no_secrets(result)

    good = results["good"]
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == (
        "mapping OK: 6 terms, 5 attributes and 7 outputs match Opportunity in the org"
    )

    wrong = results["wrong types"]
    assert wrong.returncode == 1
    assert wrong.stdout == ""
    assert wrong.stderr.splitlines() == [
        f"2 problem(s) in {wrong_types}:",
        "  terms.discount_pct.field: Uncapped_Liability__c is a boolean field; expected one of "
        "['currency', 'double', 'email', 'id', 'int', 'long', 'percent', 'phone', 'picklist', "
        "'reference', 'string', 'textarea', 'url']",
        "  attributes.region.field: Opportunity has no field 'Account.Region__c'",
    ]

    broken = results["invalid"]
    assert broken.returncode == 2
    assert "the mapping file is invalid" in broken.stderr
    assert "terms.discount_pct.field: Field required" in broken.stderr
    assert "terms.discount_pct.feild: Extra inputs are not permitted" in broken.stderr

    refused = results["bad login"]
    assert refused.returncode == 1
    assert "cannot connect to Salesforce: invalid_grant authentication failure" in refused.stderr
    assert PASSWORD + "x" not in refused.stderr + refused.stdout


def counts(line: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", line)}


def test_sync_commands(cli_env: dict[str, str], fake: FakeSalesforce) -> None:
    fake.add_opportunities(
        [
            {"Name": "Alpha", "Amount": 1000, "Discount__c": 5, "Contract_Months__c": 12},
            {"Name": "Beta", "Amount": 2000, "Discount__c": 20, "Contract_Months__c": 12},
            {"Name": "Gamma", "Amount": 3000, "Discount__c": 10, "StageName": "Closed Won"},
            {"Name": "Not governed", "Amount": 0},  # outside the mapping's filter
        ]
    )

    pulled = governance(cli_env, "sync", "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert "pulling opportunities" not in pulled.stdout + pulled.stderr  # no bar off a terminal
    assert counts(pulled.stdout) == {
        "read": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "deleted": 0,
        "checked": 3,
        "submitted": 0,
        "closed": 1,
        "failed": 0,
        "pages": 1,
        "api_calls": 1,
    }

    pushed = governance(cli_env, "sync", "push")
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == "pushed 3, failed 0, dead 0, api calls 1"
    assert {r["Name"]: r["Governance_Status__c"] for r in fake.records()} == {
        "Alpha": "auto_approved",
        "Beta": "needs_approval",
        "Gamma": "auto_approved",
        "Not governed": None,
    }

    status = governance(cli_env, "sync", "status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert re.fullmatch(r"watermark: \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}.*", lines[0])
    assert lines[1] == f"api usage: {fake.api_usage}/{fake.daily_limit}"
    assert lines[2] == "outbox: 0 pending, 0 dead"
    # Newest first: the push, then the pull, each with its counts.
    assert re.fullmatch(r"run 2 push done at \d{4}-\d{2}-\d{2} \d{2}:\d{2}: pushed 3", lines[3])
    assert re.fullmatch(r"run 1 pull done at \d{4}-\d{2}-\d{2} \d{2}:\d{2}: .*", lines[4])
    # (PostgreSQL's JSONB keeps the counts in its own key order.)
    assert counts(lines[4].split(": ", 1)[1]) == {
        "read": 3,
        "created": 3,
        "checked": 3,
        "closed": 1,
        "pages": 1,
        "api_calls": 1,
    }
    for result in (pulled, pushed, status):
        assert_no_secrets(result)


def test_settings_never_show_the_secrets(settings: Settings) -> None:
    """What a log line or an error report would print of the settings."""
    sf = settings.salesforce.model_copy(
        update={"password": SecretStr(PASSWORD), "security_token": SecretStr(TOKEN)}
    )
    for text in (repr(sf), str(sf), sf.model_dump_json()):
        assert PASSWORD not in text
        assert TOKEN not in text
