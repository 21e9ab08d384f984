"""`/api/v1/docs` works offline: the page and Swagger UI's assets come from Kaon, and render with no other host."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from kaon.admin import app as admin_app
from support.browser import PageLog, running_chromium
from support.server import KaonServer

VENDOR_SCRIPT = Path(__file__).parents[2] / "scripts" / "vendor-swagger-ui.sh"


def referenced(html: str) -> list[str]:
    """Every URL the page names: attributes and string literals that look like paths or URLs."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    found += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
    return found


def test_the_docs_page_references_only_kaons_own_urls(kaon_server: KaonServer) -> None:
    response = httpx.get(f"{kaon_server.url}/api/v1/docs", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    urls = referenced(html)
    assert len(urls) >= 4, urls  # stylesheet, favicon, script, OpenAPI document
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/api/v1/"), url
    assert not re.search(r"https?://", html), "the page names another host"
    assert '"validatorUrl": null' in html


def test_the_assets_are_served_from_the_package(kaon_server: KaonServer) -> None:
    html = httpx.get(f"{kaon_server.url}/api/v1/docs", timeout=30).text
    assets = [u for u in referenced(html) if "/docs/assets/" in u]
    assert {u.rsplit("/", 1)[-1] for u in assets} == {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}
    for url in assets:
        response = httpx.get(f"{kaon_server.url}{url}", timeout=30)
        assert response.status_code == 200, url
        assert response.content == (admin_app.SWAGGER_UI / url.rsplit("/", 1)[-1]).read_bytes()
    types = {u.rsplit(".", 1)[-1]: httpx.get(f"{kaon_server.url}{u}", timeout=30).headers["content-type"]
             for u in assets}
    assert types["js"].startswith(("text/javascript", "application/javascript")) and types["css"].startswith("text/css")
    assert httpx.get(f"{kaon_server.url}/api/v1/docs/assets/missing.js", timeout=30).status_code == 404


def test_the_vendored_copy_is_the_pinned_version_with_its_license() -> None:
    pinned = re.search(r'VERSION="\$\{1:-([0-9.]+)\}"', VENDOR_SCRIPT.read_text())
    assert pinned is not None
    assert (admin_app.SWAGGER_UI / "VERSION").read_text().strip() == f"swagger-ui-dist {pinned.group(1)}"
    assert "Apache License" in (admin_app.SWAGGER_UI / "LICENSE").read_text()
    bundle = (admin_app.SWAGGER_UI / "swagger-ui-bundle.js").read_text()
    assert "SwaggerUIBundle" in bundle and "sourceMappingURL" not in bundle


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with running_chromium() as chromium:
        yield chromium


def test_the_page_renders_every_operation_with_only_loopback_reachable(kaon_server: KaonServer,
                                                                        browser: Any) -> None:
    context = browser.new_context()
    blocked: list[str] = []

    def loopback_only(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", loopback_only)
    page = context.new_page()
    log = PageLog(kaon_server.url)
    log.attach(page)
    page.goto(f"{kaon_server.url}/api/v1/docs")
    document = httpx.get(f"{kaon_server.url}/api/v1/openapi.json", timeout=30).json()
    operations = sum(1 for item in document["paths"].values() for m in item if m in {"get", "post", "put",
                                                                                     "patch", "delete"})
    page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {operations}", timeout=30_000)
    assert page.locator(".opblock-summary-path", has_text="/api/v1/events").count() >= 1
    assert page.title() == "Kaon admin API - Swagger UI"
    assert not blocked, blocked
    assert not log.errors(), log.describe()
    context.close()
