"""Screenshots of every public page and state, for docs/public-pages.md.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Does what the browser tests do (tests/test_web_browser.py): a SQLite store with the real
registry sample, a campaign sent to the in-process SMTP server, the real app under uvicorn on
loopback, Debian's Chromium (scripts/ensure-browser installs it). Then walks the same tour of
pages and states and saves each stop as <name>.png in Bokmål, and the answer to a genuine code
in Nynorsk and English too.

The operators' console (docs/operators.md) the same way, from its browser tests
(tests/test_web_console_browser.py): console-<name>.png. `--part console` makes only those.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from playwright.sync_api import sync_playwright  # noqa: E402

from browser import CHROMIUM, CHROMIUM_ARGS, SET_UP, LiveServer  # noqa: E402
from conftest import BRREG  # noqa: E402
from helpers import next_code  # noqa: E402
from test_web_browser import PUBLIC, local, publish, settings_for, tour  # noqa: E402
from test_web_console_browser import anonymous_tour, build_world, sign_in  # noqa: E402
from test_web_console_browser import tour as console_tour  # noqa: E402
from varsel.db import connect  # noqa: E402
from varsel.testing import SmtpSink  # noqa: E402
from varsel.web import create_app  # noqa: E402
from varsel.web.document_views import address_limit  # noqa: E402

WIDTH = 820  # px: a laptop window's reading column, keeps the files small
OTHER_LANGUAGES = {"nn": ["kontroll-ekte"], "en": ["kontroll-ekte"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--part", choices=["all", "public", "console"], default="all")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing. {SET_UP}")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part in ("all", "console"):
        console(args.out)
    if args.part == "console":
        return
    with tempfile.TemporaryDirectory() as tmp, SmtpSink() as sink, sync_playwright() as pw:
        folder = Path(tmp)
        settings = settings_for(folder, str(folder / "varsel.db"), sink)
        with connect(settings.database_url) as db:
            story = publish(db, settings, folder, sink, BRREG)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        wanted = {"nb": None, **OTHER_LANGUAGES}
        for language, stops in wanted.items():
            # A fresh store per language would lose nothing the tour needs; a fresh server
            # and browser context are enough (the limit page needs the lookups counted anew).
            server = LiveServer(create_app(settings)).start()
            context = browser.new_context(
                locale="nb-NO", viewport={"width": WIDTH, "height": 700}, device_scale_factor=1
            )
            page = context.new_page()
            try:
                for stop in tour(page, local(PUBLIC, server), language, story):
                    if stops is None or stop in stops:
                        name = stop if language == "nb" else f"{stop}.{language}"
                        page.screenshot(path=args.out / f"{name}.png", full_page=True)
                        print(f"{name}.png")
            finally:
                context.close()
                server.stop()
            with connect(settings.database_url) as db, db.transaction():
                # The tour hits the lookup limit on purpose; the used-up address stays used up.
                full = address_limit(settings).scope
                db.execute("DELETE FROM rate_limits WHERE scope <> ?", (full,))
        browser.close()


def console(out: Path) -> None:
    """console-<stop>.png for every console page an administrator sees, and the sign-in pages."""
    with tempfile.TemporaryDirectory() as tmp, SmtpSink() as sink:
        world = build_world(Path(tmp), sink)
        server = LiveServer(create_app(world.settings)).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
                )
                for signed_in in (False, True):
                    context = browser.new_context(
                        locale="nb-NO", viewport={"width": 1200, "height": 800}
                    )
                    page = context.new_page()
                    if signed_in:
                        sign_in(page, server.url, "ada", next_code(world.secrets["ada"]))
                        stops = console_tour(page, server.url, "nb", world)
                    else:
                        stops = anonymous_tour(page, server.url, "nb")
                    for stop in stops:
                        page.screenshot(path=out / f"console-{stop}.png", full_page=True)
                        print(f"console-{stop}.png")
                    context.close()
                browser.close()
        finally:
            server.stop()
            world.db.close()


if __name__ == "__main__":
    main()
