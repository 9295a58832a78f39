"""Short, stable operation ids for the OpenAPI contract (`checks_create`, `deals_upsert`).

Teams generate clients from `openapi/openapi.json`, and generators name functions after the
operation ids: FastAPI's default (`check_terms_v1_checks_post`) reads badly and changes when a
path does. Ids are `<resource>_<action>`, listed here by method and path so a renamed function
never renames a client's call; a route missing from the list falls back to its function's name,
and `tests/test_openapi.py` fails until it is listed.
"""

from __future__ import annotations

from fastapi.routing import APIRoute

_DEAL = "/v1/deals/{external_id}"
_VERSION = "/v1/playbooks/{key}/versions/{number}"

OPERATION_IDS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "health_live",
    ("GET", "/readyz"): "health_ready",
    ("GET", "/v1/analytics/approvals"): "analytics_approvals",
    ("GET", "/v1/analytics/concessions"): "analytics_concessions",
    ("GET", "/v1/analytics/consistency"): "analytics_consistency",
    ("GET", "/v1/analytics/outcomes"): "analytics_outcomes",
    ("GET", "/v1/analytics/reviews"): "analytics_reviews",
    ("GET", "/v1/analytics/variance"): "analytics_variance",
    ("GET", "/v1/analytics/verdicts"): "analytics_verdicts",
    ("GET", "/v1/analytics/versions"): "analytics_versions",
    ("GET", "/v1/api-keys"): "api_keys_list",
    ("POST", "/v1/api-keys"): "api_keys_create",
    ("DELETE", "/v1/api-keys/{key_id}"): "api_keys_revoke",
    ("GET", "/v1/approval-groups"): "approval_groups_list",
    ("PUT", "/v1/approval-groups/{name}"): "approval_groups_put",
    ("GET", "/v1/approvals"): "approvals_queue",
    ("POST", "/v1/approvals/decisions"): "approvals_decide_many",
    ("GET", "/v1/approvals/{request_id}"): "approvals_get",
    ("POST", "/v1/approvals/{request_id}/decision"): "approvals_decide",
    ("POST", "/v1/approvals/{request_id}/reassign"): "approvals_reassign",
    ("GET", "/v1/audit"): "audit_list",
    ("POST", "/v1/checks"): "checks_create",
    ("GET", "/v1/deals"): "deals_list",
    ("GET", _DEAL): "deals_get",
    ("PATCH", _DEAL): "deals_update",
    ("PUT", _DEAL): "deals_upsert",
    ("POST", f"{_DEAL}/accept-counter"): "deals_accept_counter",
    ("GET", f"{_DEAL}/after-action-review"): "reviews_get",
    ("PUT", f"{_DEAL}/after-action-review"): "reviews_put",
    ("GET", f"{_DEAL}/approvals"): "deals_approvals",
    ("GET", f"{_DEAL}/checks"): "deal_checks_list",
    ("POST", f"{_DEAL}/checks"): "deal_checks_create",
    ("GET", f"{_DEAL}/outcome"): "outcomes_get",
    ("POST", f"{_DEAL}/outcome"): "outcomes_record",
    ("GET", f"{_DEAL}/preparation"): "preparations_get",
    ("PUT", f"{_DEAL}/preparation"): "preparations_put",
    ("POST", f"{_DEAL}/submit"): "deals_submit",
    ("POST", f"{_DEAL}/withdraw"): "deals_withdraw",
    ("DELETE", "/v1/me/delegation"): "delegation_clear",
    ("GET", "/v1/me/delegation"): "delegation_get",
    ("PUT", "/v1/me/delegation"): "delegation_set",
    ("GET", "/v1/playbooks"): "playbooks_list",
    ("POST", "/v1/playbooks"): "playbooks_create",
    ("POST", "/v1/playbooks/import"): "playbooks_import",
    ("GET", "/v1/playbooks/{key}"): "playbooks_get",
    ("GET", "/v1/playbooks/{key}/export"): "playbooks_export",
    ("POST", "/v1/playbooks/{key}/versions"): "versions_create",
    ("GET", _VERSION): "versions_get",
    ("PUT", _VERSION): "versions_put",
    ("GET", f"{_VERSION}/impact"): "versions_impact",
    ("POST", f"{_VERSION}/publish"): "versions_publish",
    ("DELETE", f"{_VERSION}/rules/{{rule_key}}"): "rules_delete",
    ("PUT", f"{_VERSION}/rules/{{rule_key}}"): "rules_put",
    ("POST", f"{_VERSION}/signoffs"): "signoffs_create",
    ("DELETE", f"{_VERSION}/terms/{{term_key}}"): "terms_delete",
    ("PUT", f"{_VERSION}/terms/{{term_key}}"): "terms_put",
    ("GET", "/v1/reps"): "reps_list",
    ("DELETE", "/v1/reps/{rep}"): "reps_delete",
    ("GET", "/v1/reps/{rep}"): "reps_get",
    ("PUT", "/v1/reps/{rep}"): "reps_put",
    ("POST", "/v1/salesforce/outbound-messages"): "salesforce_outbound_messages",
    ("GET", "/v1/salesforce/outbox"): "salesforce_outbox",
    ("POST", "/v1/salesforce/outbox/{item_id}/retry"): "salesforce_outbox_retry",
    ("GET", "/v1/salesforce/status"): "salesforce_status",
    ("GET", "/v1/terms"): "catalog_terms_list",
    ("GET", "/v1/terms/{term_key}"): "catalog_terms_get",
}


def operation_id(route: APIRoute) -> str:
    """The route's listed id, else its function's name (`generate_unique_id_function`)."""
    for method in sorted(route.methods or ()):
        listed = OPERATION_IDS.get((method, route.path_format))
        if listed is not None:
            return listed
    return route.name
