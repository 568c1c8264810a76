"""The dashboard in a real browser: Debian's chromium (``/usr/bin/chromium``, never a downloaded
one) driven by Playwright, against the service on a real socket.

A tenant admin signs in, sees charts with data and its own tenant's figures, never another
tenant's, and cannot read its cookie from the page; revoking its session signs the page out at
the next poll; the platform operator sees every tenant. Screenshots are saved in
``tests/artifacts/dashboard/`` (gitignored; CI keeps them as artefacts). Without chromium or
Playwright the test is skipped locally and fails under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tenantry.api import create_app
from tenantry.config import Settings
from tests.conftest import IN_CI, ROOT, TOKEN

from .world import Tenant, make_tenant

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts" / "dashboard"


def require_chromium() -> Path:
    """Debian's chromium and Playwright; skips without them (fails when CI=true)."""
    missing = [
        what
        for what, found in (
            (f"{CHROMIUM} (apt-get install -y chromium)", CHROMIUM.exists()),
            ("playwright (the test extra)", importlib.util.find_spec("playwright") is not None),
        )
        if not found
    ]
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true but the browser test needs {', '.join(missing)}")
        pytest.skip(f"needs {', '.join(missing)}")
    return CHROMIUM


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # pytest keeps its own signal handlers
        yield


@pytest.fixture(scope="module")
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The service on a free port of 127.0.0.1, and its base URL."""
    app = create_app(settings)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "the service did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 60)


async def _traffic(base: str, tenant: Tenant, requests: int) -> None:
    """Requests of the tenant's admin, which its series record."""
    bearer = {"Authorization": f"Bearer {tenant.admin_token}"}
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(requests):
            assert (await client.get("/settings", headers=bearer)).status_code == 200
        assert (await client.get("/settings/nothing-here", headers=bearer)).status_code == 404


async def _text(page: Any) -> str:
    text: str = await page.inner_text("body")
    return text


async def test_the_dashboard_in_a_browser(served: tuple[FastAPI, str]) -> None:
    chromium = require_chromium()
    from playwright.async_api import async_playwright  # noqa: PLC0415 - only with chromium

    app, base = served
    async with httpx.AsyncClient(base_url=base) as client:
        a, b = await make_tenant(client, "view-a"), await make_tenant(client, "view-b")
    await _traffic(base, a, 12)
    await _traffic(base, b, 5)
    await app.state.tenantry.monitoring.flush(everything=True)  # the series in the database
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{base}/dashboard")
            await page.wait_for_selector("#sign-in-panel:not([hidden])")
            await page.screenshot(path=ARTIFACTS / "sign-in.png")

            # a tenant admin: its tenant, with data, and nothing of the other tenant
            await page.fill("#token", a.admin_token)
            await page.click("#sign-in button[type=submit]")
            await page.wait_for_selector("body[data-loaded]")
            await page.wait_for_selector('[data-chart="throughput"][data-points]')
            await page.wait_for_selector(
                '[data-chart="latency"][data-points] svg polyline, '
                '[data-chart="latency"][data-points] svg circle'
            )
            text = await _text(page)
            assert f"tenant {a.id}" in text
            assert a.id in await page.inner_text("#tenants")
            assert "2" in await page.inner_text("#tenants")  # its two live sessions
            assert b.id not in text
            assert b.marker not in text
            assert b.id not in await page.content()
            assert await page.evaluate("document.cookie") == ""  # HttpOnly: not the page's
            assert await page.input_value("#token") == ""  # the token is not kept on the page
            await page.screenshot(path=ARTIFACTS / "tenant-admin.png", full_page=True)

            # live: the page polls, and redraws with a newer answer (read from Python: the
            # page's policy forbids evaluating strings, as wait_for_function may)
            first = await page.get_attribute("body", "data-loaded")
            for _ in range(80):
                if await page.get_attribute("body", "data-loaded") != first:
                    break
                await asyncio.sleep(0.25)
            assert await page.get_attribute("body", "data-loaded") != first, "no new answer"

            # its session revoked: the next poll signs the page out
            async with httpx.AsyncClient(base_url=base) as client:
                revoked = await client.delete(
                    f"/sessions/{a.admin_session}", headers={**TOKEN, "X-Tenant-ID": a.id}
                )
                assert revoked.status_code == 204
            await page.wait_for_selector("#sign-in-panel:not([hidden])", timeout=20_000)
            assert await page.is_hidden("#board")

            # the platform operator: every tenant
            await page.fill("#token", "test-token")
            await page.click("#sign-in button[type=submit]")
            await page.wait_for_selector("#board:not([hidden])")
            await page.wait_for_selector("#scope:has-text('every tenant (platform)')")
            await page.wait_for_selector('[data-chart="throughput"][data-points]', timeout=30_000)
            tenants = await page.inner_text("#tenants")
            assert a.id in tenants or "the first" in tenants
            assert "postgres" in await page.inner_text("#backends")
            await page.screenshot(path=ARTIFACTS / "platform.png", full_page=True)
            await page.click("#sign-out")
            await page.wait_for_selector("#sign-in-panel:not([hidden])")
            assert errors == []
        finally:
            await browser.close()
    for name in ("sign-in", "tenant-admin", "platform"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000


@pytest.mark.parametrize(("in_ci", "outcome"), [(True, "fail"), (False, "skip")])
def test_without_chromium_the_browser_test_fails_in_ci_and_skips_locally(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, in_ci: bool, outcome: str
) -> None:
    module = importlib.import_module(__name__)
    monkeypatch.setattr(module, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setattr(module, "IN_CI", in_ci)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="chromium"):
        require_chromium()
