"""The request body cap (``BodySizeLimit``) and the bounded labels of the HTTP metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from tenantry.api import create_app
from tenantry.api.middleware import BodySizeLimit
from tenantry.config import Settings
from tests.conftest import TOKEN

CAP = 4096


async def chunks(size: int, chunk: int = 1000) -> AsyncIterator[bytes]:
    """A body streamed without Content-Length (httpx sends it chunked)."""
    for start in range(0, size, chunk):
        yield b"x" * min(chunk, size - start)


class Echo:
    """An app that reads the whole body and answers its length; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        try:
            body = await Request(scope, receive).body()
        except Exception:  # noqa: BLE001 - as a framework does: the failed read becomes a 400
            await JSONResponse({"error": "cannot read"}, status_code=400)(scope, receive, send)
            return
        await JSONResponse({"length": len(body)})(scope, receive, send)


def capped(app: Echo) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=BodySizeLimit(app, max_bytes=CAP))
    return httpx.AsyncClient(transport=transport, base_url="http://tenantry")


async def test_a_body_up_to_the_cap_passes() -> None:
    app = Echo()
    async with capped(app) as client:
        assert (await client.post("/", content=b"x" * CAP)).json() == {"length": CAP}
        streamed = await client.post("/", content=chunks(CAP))
        assert streamed.json() == {"length": CAP}


async def test_a_declared_length_over_the_cap_is_413_before_the_app_runs() -> None:
    app = Echo()
    async with capped(app) as client:
        response = await client.post("/", content=b"x" * (CAP + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "content too large"
    assert f"{CAP + 1} bytes" in response.json()["detail"]
    assert app.calls == 0


async def test_a_chunked_body_over_the_cap_is_cut_off_with_413() -> None:
    app = Echo()
    async with capped(app) as client:
        response = await client.post("/", content=chunks(CAP * 50))
    assert response.status_code == 413  # not the app's 400 for the failed read
    assert response.headers["content-type"] == "application/problem+json"
    assert f"at most {CAP} bytes" in response.json()["detail"]


@pytest.fixture(scope="module")
async def small_cap(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service with a 4 KiB body cap."""
    app = create_app(settings.model_copy(update={"max_body_bytes": CAP}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as c:
            yield c


async def tenant_headers(client: httpx.AsyncClient) -> dict[str, str]:
    tenant_id = f"cap-{uuid.uuid4().hex[:10]}"
    created = await client.post(
        "/tenants", json={"id": tenant_id, "display_name": "Cap"}, headers=TOKEN
    )
    assert created.status_code == 201, created.text
    return {**TOKEN, "X-Tenant-ID": tenant_id, "Content-Type": "application/json"}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_the_service_answers_413_and_stores_nothing(
    small_cap: httpx.AsyncClient, chunked: bool
) -> None:
    headers = await tenant_headers(small_cap)
    body = b'{"value": "' + b"x" * CAP + b'"}'
    content = chunks(len(body)) if chunked else body
    response = await small_cap.put("/settings/big", content=content, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413
    assert problem["instance"] == "/settings/big"
    assert problem["request_id"] == response.headers["x-request-id"]
    assert (await small_cap.get("/settings/big", headers=headers)).status_code == 404
    fits = await small_cap.put("/settings/big", json={"value": "x" * 100}, headers=headers)
    assert fits.status_code == 200


async def test_the_default_cap_refuses_a_2_mb_setting(client: httpx.AsyncClient) -> None:
    headers = await tenant_headers(client)
    body = b'{"value": "' + b"x" * 2_000_000 + b'"}'
    response = await client.put("/settings/huge", content=body, headers=headers)
    assert response.status_code == 413
    assert len(response.content) < 1000
    assert (await client.get("/settings", headers=headers)).json() == []


async def test_unknown_methods_share_one_metrics_label(client: httpx.AsyncClient) -> None:
    for method in ("BREW", "PROPFIND", "X" * 40):
        await client.request(method, "/health/live")
    metrics = (await client.get("/metrics", headers=TOKEN)).text
    assert 'method="other"' in metrics
    assert "BREW" not in metrics
    assert "PROPFIND" not in metrics
