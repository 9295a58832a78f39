"""The adapter logs in every way the settings allow, against the fake org."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from fake_salesforce import FakeSalesforce
from governance.salesforce.client import (
    AuthenticationFailed,
    SimpleSalesforceClient,
    login_domain,
)
from governance.settings import SalesforceSettings


@pytest.fixture
def private_key(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "server.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_jwt_bearer_login(fake: FakeSalesforce, private_key: Path) -> None:
    client = SimpleSalesforceClient(
        SalesforceSettings(
            login_url=fake.url,
            auth="jwt",
            consumer_key=SecretStr("3MVG9-consumer"),
            username="sync@example.com",
            private_key_file=private_key,
        )
    )
    assert {f["name"] for f in client.describe("Opportunity")["fields"]} >= {"Id", "Discount__c"}
    assert fake.issued_tokens[-1].grant_type == "jwt-bearer"
    assert client.usage is not None
    assert client.usage.used >= 1


def test_client_credentials_login(fake: FakeSalesforce) -> None:
    client = SimpleSalesforceClient(
        SalesforceSettings(
            login_url=fake.url,
            auth="client_credentials",
            consumer_key=SecretStr("3MVG9-consumer"),
            consumer_secret=SecretStr("consumer-secret"),
        )
    )
    assert client.query("SELECT Id FROM Opportunity").records == []
    assert fake.issued_tokens[-1].grant_type == "client_credentials"


def test_wrong_password_is_a_typed_error_without_the_secret(fake: FakeSalesforce) -> None:
    with pytest.raises(AuthenticationFailed) as refused:
        SimpleSalesforceClient(
            SalesforceSettings(
                login_url=fake.url,
                auth="password",
                username="sync@example.com",
                password=SecretStr("not-the-password-xyz"),
                security_token=SecretStr("tok"),
            )
        )
    assert "not-the-password-xyz" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://login.salesforce.com", "login"),
        ("https://test.salesforce.com", "test"),
        ("https://acme.my.salesforce.com", "acme.my"),
        ("http://127.0.0.1:8765", "local.login"),
    ],
)
def test_login_domains(url: str, domain: str) -> None:
    assert login_domain(url) == domain
