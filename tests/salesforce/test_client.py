"""The adapter gets its token through the OAuth 2.0 flows the settings name (never SOAP
`login()`), renews it on INVALID_SESSION_ID, and never shows a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from fake_salesforce import FakeSalesforce
from governance.salesforce.client import (
    AuthenticationFailed,
    SessionExpired,
    SimpleSalesforceClient,
    jwt_audience,
)
from governance.settings import SalesforceSettings


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_key(key: rsa.RSAPrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def app_key(fake: FakeSalesforce) -> rsa.RSAPrivateKey:
    """The connected app's key pair: the org holds the public half (its certificate)."""
    key = rsa_key()
    fake.jwt_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fake.consumer_key = "3MVG9-consumer"
    return key


def jwt_settings(fake: FakeSalesforce, key_file: Path, **changes: object) -> SalesforceSettings:
    values: dict[str, object] = {
        "login_url": fake.url,
        "auth": "jwt",
        "consumer_key": SecretStr("3MVG9-consumer"),
        "username": "sync@example.com",
        "private_key_file": key_file,
        **changes,
    }
    return SalesforceSettings.model_validate(values)


def test_jwt_bearer_login_signs_an_assertion_the_org_verifies(
    fake: FakeSalesforce, app_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    client = SimpleSalesforceClient(jwt_settings(fake, write_key(app_key, tmp_path / "k.pem")))
    assert {f["name"] for f in client.describe("Opportunity")["fields"]} >= {"Id", "Discount__c"}
    assert fake.issued_tokens[-1].grant_type == "jwt-bearer"
    assert fake.issued_tokens[-1].username == "sync@example.com"
    assert client.usage is not None
    assert client.usage.used >= 1
    assert not any("/Soap/" in entry.path for entry in fake.log)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"signed_by": "another key"}, "invalid assertion", id="wrong-key"),
        pytest.param({"jwt_audience": "https://example.com"}, "audience is invalid", id="aud"),
        pytest.param({"consumer_key": SecretStr("3MVG9-other")}, "client identifier", id="iss"),
    ],
)
def test_a_jwt_the_org_cannot_verify_is_refused(
    fake: FakeSalesforce,
    app_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    changes: dict[str, object],
    reason: str,
) -> None:
    key = rsa_key() if changes.pop("signed_by", None) else app_key
    settings = jwt_settings(fake, write_key(key, tmp_path / "k.pem"), **changes)
    with pytest.raises(AuthenticationFailed) as refused:
        SimpleSalesforceClient(settings)
    assert reason in refused.value.message
    assert refused.value.code in ("invalid_grant", "invalid_client_id")
    assert fake.issued_tokens == []


@pytest.mark.parametrize(
    ("url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
    ],
)
def test_the_jwt_audience_follows_the_login_url(url: str, audience: str) -> None:
    assert jwt_audience(SalesforceSettings(login_url=url)) == audience
    assert jwt_audience(SalesforceSettings(login_url=url, jwt_audience="https://x.io")) == (
        "https://x.io"
    )


def test_client_credentials_login(fake: FakeSalesforce) -> None:
    fake.consumer_key, fake.consumer_secret = "3MVG9-consumer", "consumer-secret"
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
    with pytest.raises(AuthenticationFailed) as refused:
        SimpleSalesforceClient(
            SalesforceSettings(
                login_url=fake.url,
                auth="client_credentials",
                consumer_key=SecretStr("3MVG9-consumer"),
                consumer_secret=SecretStr("not-the-secret-xyz"),
            )
        )
    assert refused.value.code == "invalid_client"
    assert "not-the-secret-xyz" not in str(refused.value)


def test_password_login_is_the_oauth_flow_through_the_connected_app(
    fake: FakeSalesforce, sf_client: SimpleSalesforceClient
) -> None:
    assert sf_client.query("SELECT Id FROM Opportunity").records == []
    assert [t.grant_type for t in fake.issued_tokens] == ["password"]
    assert not any("/Soap/" in entry.path for entry in fake.log)


def test_password_login_needs_the_connected_app(fake: FakeSalesforce) -> None:
    with pytest.raises(AuthenticationFailed) as refused:
        SimpleSalesforceClient(
            SalesforceSettings(
                login_url=fake.url,
                auth="password",
                username="sync@example.com",
                password=SecretStr("pw"),
                security_token=SecretStr("tok"),
            )
        )
    assert refused.value.code == "INVALID_SETTINGS"
    assert "consumer_key, consumer_secret" in refused.value.message
    assert fake.calls["total"] == 0


def test_wrong_password_is_a_typed_error_without_the_secret(
    fake: FakeSalesforce, sf_client: SimpleSalesforceClient
) -> None:
    settings = sf_client.settings.model_copy(update={"password": SecretStr("not-the-password-xyz")})
    with pytest.raises(AuthenticationFailed) as refused:
        SimpleSalesforceClient(settings)
    assert (refused.value.code, refused.value.message) == (
        "invalid_grant",
        "authentication failure",
    )
    assert "not-the-password-xyz" not in str(refused.value)


def test_an_expired_session_is_renewed_and_the_call_sent_again(
    fake: FakeSalesforce, sf_client: SimpleSalesforceClient
) -> None:
    fake.add_opportunity(Name="Acme")
    fake.expire_sessions()  # every token dies: the next call answers 401 INVALID_SESSION_ID
    assert len(sf_client.query("SELECT Id FROM Opportunity").records) == 1
    assert [t.grant_type for t in fake.issued_tokens] == ["password", "password"]
    assert [e.status for e in fake.log if e.kind == "query"] == [401, 200]
    # The renewed token serves every later call (no login per call).
    sf_client.query("SELECT Id FROM Opportunity")
    assert len(fake.issued_tokens) == 2

    # A session refused again straight after renewal is a typed, retryable error.
    fake.inject("query", "INVALID_SESSION_ID", times=2)
    with pytest.raises(SessionExpired):
        sf_client.query("SELECT Id FROM Opportunity")
