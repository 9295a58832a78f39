"""A local fake Salesforce org: a small threaded HTTP server on loopback.

It implements the subset of the Salesforce REST API (and the OAuth / SOAP login endpoints) that
the Salesforce sync uses, with Salesforce's documented shapes, an in-memory Opportunity store,
API-usage accounting and fault injection. Tests, ``make demo`` and the benches import it::

    from fake_salesforce import FakeSalesforce

    with FakeSalesforce(api_version="59.0") as sf:
        ids = sf.add_opportunities([{"Name": "Acme", "StageName": "Prospecting"}])
        token = sf.issue_token()
        # GET {sf.url}/services/data/v59.0/query?q=SELECT+Id+FROM+Opportunity
        #     Authorization: Bearer {token}
        sf.inject("query", "QUERY_TIMEOUT")  # the next query answers 400 QUERY_TIMEOUT

Endpoints (``{v}`` is an API version no newer than ``api_version``):

- ``POST /services/oauth2/token``: grant types ``password``, ``client_credentials`` and
  ``urn:ietf:params:oauth:grant-type:jwt-bearer`` (any syntactically valid JWT, unless
  ``jwt_public_key`` is set: then the RS256 signature, ``aud`` and ``exp`` are checked), with
  Salesforce's ``{"error", "error_description"}`` answers when refused.
- ``POST /services/Soap/u/{v}``: the SOAP ``login()`` simple-salesforce uses for
  username + password + security token.
- ``GET /services/data/v{v}/query?q=``, ``/queryAll?q=`` and ``/query/{locator}-{offset}``
  (also ``/queryAll/{locator}-{offset}``) with ``nextRecordsUrl`` paging.
- ``GET /services/data/v{v}/sobjects/{Opportunity|Account}/describe``.
- ``GET /services/data/v{v}/sobjects/Opportunity/{id}[?fields=A,B]``.
- ``PATCH /services/data/v{v}/composite/sobjects`` (sObject Collections update).
- ``GET /_fake/stats``: counters as JSON, for a fake running in another process.

Run it standalone (for a demo, or to keep its memory out of a bench's process)::

    python -m fake_salesforce --port 8765 --opportunities 300

The modules, by responsibility: ``ids`` (Ids, datetimes), ``clock``, ``schema`` (fields,
coercion), ``soql`` (tokenizer, parser, sorting), ``state`` (what the org holds), ``records``
(the Python API to records), ``auth`` (tokens, OAuth, SOAP login), ``query``, ``sobjects``
(describe, retrieve, Collections), ``faults`` (injected faults, the API limit), ``org``
(``FakeSalesforce``: dispatch and lifecycle), ``server`` (HTTP), ``sample`` (sample data).

This package is a test and development tool: it must not import anything from ``governance``,
and ``governance`` must not import it.
"""

from fake_salesforce.clock import FakeClock
from fake_salesforce.faults import FAULT_KINDS
from fake_salesforce.ids import (
    DEFAULT_USER_ID,
    INTEGRATION_USER_ID,
    ORG_ID,
    format_datetime,
    id18,
    parse_datetime,
)
from fake_salesforce.org import FakeSalesforce
from fake_salesforce.sample import sample_opportunities
from fake_salesforce.schema import DEFAULT_CUSTOM_FIELDS, FieldSpec
from fake_salesforce.state import FiredFault, IssuedToken, LoggedRequest

__all__ = [
    "DEFAULT_CUSTOM_FIELDS",
    "DEFAULT_USER_ID",
    "FAULT_KINDS",
    "INTEGRATION_USER_ID",
    "ORG_ID",
    "FakeClock",
    "FakeSalesforce",
    "FieldSpec",
    "FiredFault",
    "IssuedToken",
    "LoggedRequest",
    "format_datetime",
    "id18",
    "parse_datetime",
    "sample_opportunities",
]
