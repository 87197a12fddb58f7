"""Real Chromium for page tests: a live uvicorn server on loopback, a page, and axe-core checks.

The fixtures take any ASGI app, so every web part (public pages, console) tests the same way:

    def test_x(live_server, page):
        server = live_server(create_app(settings))
        page.goto(server.url + "/kontroll")
        axe_check(page)

Chromium is Debian's (/usr/bin/chromium, driven through Playwright's executable_path) and
axe-core is the pinned npm package in tests/browser/; `scripts/ensure-browser` installs both.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from starlette.types import ASGIApp

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")  # WCAG 2.1 AA, as Norwegian law asks
CHROMIUM_ARGS = (
    "--no-sandbox",  # tests run as root in CI containers, where the sandbox cannot start
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",  # loopback only: no update or safe-browsing calls
    "--disable-component-update",
    "--disable-sync",
)
SET_UP = "Run scripts/ensure-browser (make test does) to install Chromium and axe-core."


class LiveServer:
    """An ASGI app served by a real uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        # Bind first and hand uvicorn the socket: the port is ours before anyone can race for it.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="on",
            **options,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{self.port}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as e:  # reported by start() or stop(), in the test's thread
            self._error = e

    def start(self, timeout: float = 10.0) -> LiveServer:
        """Serve, and return once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"uvicorn did not start: {self._error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Finish open requests, run the app's shutdown, and stop."""
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()
        if self._error is not None:
            raise self._error


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """Starts apps on live uvicorn servers: `live_server(app, **uvicorn_options)`."""
    started: list[LiveServer] = []

    def start(app: ASGIApp, **options: Any) -> LiveServer:
        server = LiveServer(app, **options).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


# Module scope, not session: while Playwright's sync API runs, its event loop counts as running
# in this thread, so a later test in another module calling asyncio.run() (the SMTP sink, the
# sender) would fail. Pytest tears a module fixture down before it runs another module's test.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium, one per test module in each test process."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing. {SET_UP}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh page in its own context: no cookies from other tests."""
    context = chromium.new_context(locale="nb-NO", viewport={"width": 1000, "height": 800})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def axe_violations(page: Page, tags: tuple[str, ...] = AXE_TAGS) -> list[dict[str, Any]]:
    """axe-core's violations of the given rule tags on the page as it is now."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing. {SET_UP}")
    # evaluate() runs through the DevTools protocol, which the page's strict CSP does not
    # govern; a <script> tag would be refused, as it should be.
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text("utf-8"))
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, "
        "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        list(tags),
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def axe_check(page: Page, tags: tuple[str, ...] = AXE_TAGS) -> None:
    """Fail, listing each violation with where it is, if axe-core finds any on the page."""
    violations = axe_violations(page, tags)
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']}\n"
        + "\n".join(f"    {n['target']}: {n['failureSummary']}" for n in v["nodes"])
        for v in violations
    ]
    assert not violations, f"{page.url}: {len(violations)} axe violations\n" + "\n".join(lines)
