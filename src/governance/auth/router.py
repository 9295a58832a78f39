"""HTTP routes for API keys (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from governance.auth import service as auth_service
from governance.auth.dependencies import Admin, GroupDirectory, KeyCache
from governance.auth.repository import ApiKeyRepository
from governance.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiKeyRead
from governance.db import DbSession
from governance.errors import problem_responses
from governance.http import StrictRoute
from governance.pagination import MAX_ID

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], route_class=StrictRoute)


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create an API key; the secret is returned once",
    description="Names are unique among active keys: an active key's name is 409. An "
    "approver key's groups must exist (named by a published or draft playbook or the term "
    "catalog, or created with `PUT /v1/approval-groups/{group}`): an unknown one is 422 "
    "naming `groups[i]`.",
    responses=problem_responses(401, 403, 409, 422),
)
def create_api_key(
    body: ApiKeyCreate, principal: Admin, session: DbSession, groups: GroupDirectory
) -> ApiKeyCreated:
    key, secret = auth_service.create_key(session, principal, body, groups=groups)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), secret=secret)


@router.get(
    "",
    response_model=ApiKeyPage,
    summary="List API keys (never their secrets)",
    responses=problem_responses(401, 403),
)
def list_api_keys(principal: Admin, session: DbSession) -> ApiKeyPage:
    keys = ApiKeyRepository(session).list()
    return ApiKeyPage(items=[ApiKeyRead.model_validate(k) for k in keys])


@router.delete(
    "/{key_id}",
    response_model=ApiKeyRead,
    summary="Revoke an API key",
    description="The last active admin key cannot be revoked (409).",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def revoke_api_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    principal: Admin,
    session: DbSession,
    request: Request,
) -> ApiKeyRead:
    key = auth_service.revoke_key(session, principal, key_id)
    cache: KeyCache = request.app.state.key_cache
    cache.clear()  # other replicas drop it within api_key_cache_seconds
    return ApiKeyRead.model_validate(key)
