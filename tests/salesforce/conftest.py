"""A fake org on loopback, the service's settings pointing at it, and the sync's collaborators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from fake_salesforce import ORG_ID, FakeSalesforce
from governance.salesforce.client import SimpleSalesforceClient
from governance.salesforce.mapping import SyncMapping, parse
from governance.settings import SalesforceSettings, Settings

MAPPING = {
    "sobject": "Opportunity",
    "filter": "Amount > 0",
    "submit_field": "Submit_For_Approval__c",
    "terms": {
        "discount_pct": {"field": "Discount__c"},
        "payment_terms_days": {"field": "Payment_Terms_Days__c"},
        "contract_months": {"field": "Contract_Months__c"},
        "liability_cap_multiple": {"field": "Liability_Cap_Multiple__c"},
        "uncapped_liability": {"field": "Uncapped_Liability__c"},
        "support_level": {
            "field": "Support_Level__c",
            "values": {"Standard": "standard", "Premium": "premium", "Platinum": "platinum"},
        },
    },
    "attributes": {
        "name": {"field": "Name"},
        "amount": {"field": "Amount"},
        "stage": {"field": "StageName"},
        "close_date": {"field": "CloseDate"},
        "region": {
            "field": "Account.BillingCountry",
            "values": {"France": "EMEA", "Germany": "EMEA", "United States": "NA"},
            "default": "OTHER",
        },
    },
    "outputs": {
        "status": "Governance_Status__c",
        "variance": "Governance_Variance__c",
        "approvers": "Governance_Approvers__c",
        "approval_status": "Governance_Approval_Status__c",
        "check_url": "Governance_Check_URL__c",
        "outcome": "Governance_Outcome__c",
        "concession_cost": "Governance_Concession_Cost__c",
    },
}
SECRET = "outbound-secret-0123456789"
CONSUMER_KEY = "3MVG9-sync-consumer-key"
CONSUMER_SECRET = "sync-consumer-secret-42"


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce("59.0", timeout_sleep=4.0) as org:
        org.username, org.password, org.security_token = "sync@example.com", "pw", "tok"
        org.consumer_key, org.consumer_secret = CONSUMER_KEY, CONSUMER_SECRET
        yield org
        assert org.internal_errors == []


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(MAPPING), encoding="utf-8")
    return path


@pytest.fixture
def settings(database_url: str, fake: FakeSalesforce, mapping_file: Path) -> Settings:
    return Settings(
        database_url=database_url,
        db_pool_size=5,
        salesforce=SalesforceSettings(
            login_url=fake.url,
            # The least preferred flow, so the suite shows no secret leaks (the others' tests
            # are in test_client.py).
            auth="password",
            consumer_key=SecretStr(CONSUMER_KEY),
            consumer_secret=SecretStr(CONSUMER_SECRET),
            username="sync@example.com",
            password=SecretStr("pw"),
            security_token=SecretStr("tok"),
            timeout_seconds=2.5,  # generous for a loaded machine; the fake's timeout fault sleeps 4 s
            mapping_file=mapping_file,
            overlap_seconds=60,
            retry_base_seconds=1,
            max_attempts=3,
            organization_id=ORG_ID,
            outbound_message_secret=SecretStr(SECRET),
        ),
    )


@pytest.fixture
def mapping() -> SyncMapping:
    return parse(MAPPING)


@pytest.fixture
def sf_client(settings: Settings) -> SimpleSalesforceClient:
    return SimpleSalesforceClient(settings.salesforce)
