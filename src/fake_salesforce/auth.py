"""Sessions: access tokens, the OAuth token endpoint and the SOAP ``login()``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fake_salesforce.responses import Response, json_response
from fake_salesforce.server import rewriting_session
from fake_salesforce.state import IssuedToken, OrgState

if TYPE_CHECKING:
    import requests

_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class AuthMixin(OrgState):
    """Tokens issued (over HTTP or directly), checked on every API call."""

    def issue_token(self, user_id: str | None = None) -> str:
        """A live access token without an HTTP call (not counted)."""
        return self._issue("direct", user_id or self.integration_user_id, None)

    def expire_sessions(self) -> None:
        """Invalidate every token issued so far: the next API call answers 401."""
        with self._lock:
            self._tokens.clear()

    def is_live(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def _issue(self, grant: str, user_id: str, username: str | None) -> str:
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens[token] = user_id
            self._issued.append(IssuedToken(token, grant, user_id, username))
        return token

    def requests_session(self) -> requests.Session:
        """A ``requests.Session`` that sends everything to this fake: pass it to simple-salesforce
        (``Salesforce(..., session=sf.requests_session())``), whose URLs are always
        ``https://{domain}.salesforce.com/…`` or ``https://{instance}/…``."""
        return rewriting_session(self.url)

    def _authenticate(self, headers: Mapping[str, str]) -> str | None:
        value = headers.get("authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return None
        with self._lock:
            return self._tokens.get(token.strip())

    def _check_user(self, username: str | None, password: str | None) -> bool:
        if self.username is not None and username != self.username:
            return False
        if self.password is not None:
            return password == self.password + (self.security_token or "")
        return bool(username) and bool(password)

    def _oauth_token(
        self, params: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Response:
        form = dict(params)
        text = body.decode("utf-8", "replace")
        form.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
        grant = form.get("grant_type")

        def oauth_error(error: str, description: str, status: int = 400) -> Response:
            return json_response(status, {"error": error, "error_description": description})

        client_id = form.get("client_id")
        client_secret = form.get("client_secret")
        basic = headers.get("authorization") or ""
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip()).decode()
            except ValueError:
                return oauth_error("invalid_client", "invalid client credentials")
            client_id, _, client_secret = decoded.partition(":")
        username: str | None = None
        if grant == "password":
            if self.consumer_key is not None and client_id != self.consumer_key:
                return oauth_error("invalid_client_id", "client identifier invalid")
            if self.consumer_secret is not None and client_secret != self.consumer_secret:
                return oauth_error("invalid_client", "invalid client credentials")
            username = form.get("username")
            if not self._check_user(username, form.get("password")):
                return oauth_error("invalid_grant", "authentication failure")
            label = "password"
        elif grant == "client_credentials":
            if not client_id or not client_secret:
                return oauth_error("invalid_client", "invalid client credentials")
            if (self.consumer_key is not None and client_id != self.consumer_key) or (
                self.consumer_secret is not None and client_secret != self.consumer_secret
            ):
                return oauth_error("invalid_client", "invalid client credentials")
            label = "client_credentials"
        elif grant == _JWT_GRANT:
            assertion = form.get("assertion") or ""
            claims = _jwt_claims(assertion)
            if claims is None:
                return oauth_error("invalid_grant", "invalid assertion")
            if self.jwt_public_key is not None:
                refused = self._check_jwt(assertion, claims)
                if refused is not None:
                    return oauth_error("invalid_grant", refused)
            if self.consumer_key is not None and claims.get("iss") != self.consumer_key:
                return oauth_error("invalid_client_id", "client identifier invalid")
            username = claims.get("sub") if isinstance(claims.get("sub"), str) else None
            if self.username is not None and username != self.username:
                return oauth_error("invalid_grant", "user hasn't approved this consumer")
            label = "jwt-bearer"
        elif not grant:
            return oauth_error("invalid_request", "grant type not supported")
        else:
            return oauth_error("unsupported_grant_type", "grant type not supported")
        user_id = self.integration_user_id
        token = self._issue(label, user_id, username)
        issued_at = str(int(self.clock.now().timestamp() * 1000))
        identity = f"{self.url}/id/{self.org_id}/{user_id}"
        signature = base64.b64encode(
            hmac.new(
                (client_secret or "fake-secret").encode(),
                (identity + issued_at).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        payload: dict[str, Any] = {
            "access_token": token,
            "instance_url": self.url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if label != "password":
            payload["scope"] = "api"
        return json_response(200, payload)

    def _check_jwt(self, assertion: str, claims: Mapping[str, Any]) -> str | None:
        """Why Salesforce would refuse this assertion (signature, audience, expiry), or None."""
        import jwt

        assert self.jwt_public_key is not None
        try:
            jwt.decode(
                assertion,
                self.jwt_public_key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "require": ["exp"]},
            )
        except jwt.PyJWTError:
            return "invalid assertion"
        audiences = {"https://login.salesforce.com", "https://test.salesforce.com", self.url}
        if claims.get("aud") not in audiences:
            return "audience is invalid"
        exp = claims.get("exp")
        try:
            expired = float(str(exp)) <= self.clock.now().timestamp()
        except (TypeError, ValueError):
            expired = True
        return "invalid assertion" if expired else None

    def _soap_login(self, body: bytes) -> Response:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return _soap_fault(500, "INVALID_REQUEST", "Could not parse the login request")
        username = password = None
        for element in root.iter():
            local = element.tag.rsplit("}", 1)[-1]
            if local == "username":
                username = element.text or ""
            elif local == "password":
                password = element.text or ""
        if not self._check_user(username, password):
            return _soap_fault(
                500,
                "INVALID_LOGIN",
                "Invalid username, password, security token; or user locked out.",
            )
        user_id = self.integration_user_id
        token = self._issue("soap", user_id, username)
        version = self.api_version
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{self.url}/services/Soap/m/{version}/{self.org_id[:15]}"
            "</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{self.url}/services/Soap/u/{version}/{self.org_id[:15]}</serverUrl>"
            f"<sessionId>{escape(token)}</sessionId><userId>{user_id}</userId>"
            "<userInfo>"
            f"<organizationId>{self.org_id}</organizationId>"
            f"<userId>{user_id}</userId><userName>{escape(username or '')}</userName>"
            "</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, xml.encode(), "text/xml;charset=UTF-8")


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    """The payload of a syntactically valid JWT (header and payload JSON objects), else None."""
    parts = assertion.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]*", p) for p in parts):
        return None
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
        )
    except ValueError:
        return None
    if not isinstance(header, dict) or "alg" not in header or not isinstance(claims, dict):
        return None
    return claims


def _soap_fault(status: int, code: str, message: str) -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(status, xml.encode(), "text/xml;charset=UTF-8")
