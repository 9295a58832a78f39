"""The service app plus a bare echo route, so both are measured on the same server."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from governance.app import create_app


def create_bench_app() -> FastAPI:
    app = create_app()

    @app.post("/bench/echo", include_in_schema=False)
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    # Match the echo route first, as the service matches /v1/checks first, so routing costs
    # both the same and the ratio measures the check itself.
    app.router.routes.insert(0, app.router.routes.pop())
    return app
