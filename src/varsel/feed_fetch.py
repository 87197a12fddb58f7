"""Follow the registry's change feed: fetch the pages since the last change applied, apply each.

The feed (`/oppdateringer/enheter` and `/underenheter`) lists every change with a rising
`oppdateringsid`. The store keeps the last id applied per kind (feed_state), so a fetch asks
for the changes above it, a page at a time in id order, and advances by the last id a page
held: no page depth limit, and a run that stops half way is continued by the next. A dump's
import starts the feed afresh (the store is then as the dump was made, about 05:00 on its
day): the first fetch after it asks from the dump's day, and apply_feed skips what the dump
already holds.

Each page is applied in its own transaction: a failure leaves the pages before it applied and
the store consistent, and running again fetches from there. A page is written to disk only in
a folder the caller names (the snapshot then names the file, as for a page given by hand; else
the page's address): pages hold sole proprietors' names and addresses, and the data of units
the registry has since removed, so they are not left lying about by default.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from varsel import __version__
from varsel.config import Settings
from varsel.db import Database
from varsel.download import (
    BUSY_STATUSES,
    Unavailable,
    api_base,
    retry_after,
    status_problem,
    with_retries,
    write_atomically,
)
from varsel.dump import Kind
from varsel.errors import DownloadError, UserError, os_reason
from varsel.feed import FeedResult, apply_feed
from varsel.feed_page import MAX_PAGE_BYTES, page_of
from varsel.i18n import fmt_int
from varsel.snapshot import latest_snapshot

# The registry's media types for the change feed (version 1, the one it serves).
FEED_ACCEPT = {
    Kind.ENHETER: "application/vnd.brreg.enhetsregisteret.oppdatering.enhet.v1+json",
    Kind.UNDERENHETER: "application/vnd.brreg.enhetsregisteret.oppdatering.underenhet.v1+json",
}
PAGE_SIZE = 1000  # changes a page; ~5,000 a day, so a daily run fetches a handful of pages
MAX_PAGE_SIZE = 10_000  # the largest page the registry serves


@dataclass(frozen=True)
class FetchResult:
    """What one fetch of a kind's change feed did."""

    kind: Kind
    start: str  # where it began, in words: above an id, or from a dump's day
    pages: tuple[FeedResult, ...]
    changes: int  # entries fetched, over all pages

    def summary(self) -> str:
        if not self.pages:
            return f"Ingen nye endringer i {self.kind.value} ({self.start})."
        pages = "side" if len(self.pages) == 1 else "sider"
        return (
            f"{fmt_int(self.changes)} endringer i {self.kind.value} hentet ({self.start}) "
            f"på {fmt_int(len(self.pages))} {pages}, og lagt inn."
        )


def feed_url(settings: Settings, kind: Kind) -> str:
    """The address of a kind's change feed (under VARSEL_REGISTRY_BASE_URL)."""
    return f"{api_base(settings)}/oppdateringer/{kind.value}"


def has_start(db: Database, kind: Kind) -> bool:
    """Whether the store can follow the kind's feed: it holds a dump or a page of that kind."""
    try:
        start_of(db, kind)
    except UserError:
        return False
    return True


def start_of(db: Database, kind: Kind) -> tuple[dict[str, str], str]:
    """The query that asks for what the store lacks, and the same in words.

    Above the last id applied; before any page since the dump imported last (an import starts
    the feed afresh from its day), from that day. A store with no dump cannot follow the feed:
    the feed has changes, not whole units.
    """
    last = db.scalar("SELECT last_update_id FROM feed_state WHERE kind = ?", (kind.value,))
    if last is not None and int(last) > 0:
        return {"oppdateringsid": str(int(last) + 1)}, f"etter oppdateringsid {int(last)}"
    dump = latest_snapshot(db, kind.value, "dump")
    if dump is None or not dump.dump_date:
        raise UserError(
            f"lageret har ingen import av {kind.value} å bygge videre på: importer et uttrekk "
            f"først (varsel registry download --kind {kind.value} og varsel registry import)"
        )
    return (
        {"dato": f"{dump.dump_date}T00:00:00.000Z"},
        f"fra {dump.dump_date}, dagen uttrekket er fra",
    )


def fetch_feed(
    db: Database,
    settings: Settings,
    kind: Kind,
    folder: Path | None = None,
    *,
    size: int = PAGE_SIZE,
    actor: str | None = None,
    on_page: Callable[[FeedResult], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    client: httpx.Client | None = None,
) -> FetchResult:
    """Fetch and apply a kind's change-feed pages until the registry has no more.

    Each page is kept in `folder` when one is given; otherwise it is applied as it came and
    never written to disk, and its snapshot names its address.
    """
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"size must be 1..{MAX_PAGE_SIZE}, not {size}")
    url = feed_url(settings, kind)
    timeout = settings.download_timeout
    wanted, start = start_of(db, kind)
    headers = {"Accept": FEED_ACCEPT[kind], "User-Agent": f"varsel/{__version__}"}
    results: list[FeedResult] = []
    changes = 0
    with contextlib.ExitStack() as stack:
        http = client or stack.enter_context(httpx.Client(timeout=httpx.Timeout(timeout)))
        while True:
            params = {**wanted, "size": str(size), "includeChanges": "true", "sort": "id,ASC"}
            # Asked again after a pause when the registry is busy or unreachable.
            ask = functools.partial(_get, http, url, params, headers)
            body = with_retries(url, None, timeout, ask, on_wait)
            ids = _update_ids(url, body, kind)
            if not ids:
                break
            asked = int(wanted.get("oppdateringsid", "0"))
            if min(ids) < asked:
                # The filter was not honoured: the page would be the same again and again.
                raise DownloadError(
                    f"{url}: registeret svarte med endringer før oppdateringsid {asked}, som "
                    "det ble spurt etter; henting stoppet (sidene før er lagt inn)"
                )
            name = Path(f"oppdateringer-{kind.value}-{min(ids)}-{max(ids)}.json")
            if folder is None:
                # Pages hold sole proprietors' names and addresses: not kept unless asked.
                page = page_of(name, body, source=str(httpx.URL(url, params=params)))
            else:
                page = page_of(_keep(folder / name, body), body)
            result = apply_feed(db, page, actor=actor)
            results.append(result)
            changes += len(ids)
            if on_page is not None:
                on_page(result)
            # Until a page comes back empty: a short page need not be the last (a registry
            # may serve fewer than asked for), and stopping there would fall behind daily.
            wanted = {"oppdateringsid": str(max(ids) + 1)}
    return FetchResult(kind, start, tuple(results), changes)


def _get(http: httpx.Client, url: str, params: dict[str, str], headers: dict[str, str]) -> bytes:
    """One page's body; a status other than 200 or a body beyond a page's size is an error."""
    with http.stream("GET", url, params=params, headers=headers, follow_redirects=True) as r:
        if r.status_code in BUSY_STATUSES:
            raise Unavailable(f"{url}: {status_problem(r)}", retry_after(r))
        if r.status_code != 200:
            raise DownloadError(f"{url}: {status_problem(r)}")
        parts: list[bytes] = []
        size = 0
        for chunk in r.iter_bytes():
            size += len(chunk)
            if size > MAX_PAGE_BYTES:
                raise DownloadError(
                    f"{url}: svaret er større enn en side fra endringsloggen kan være "
                    f"({MAX_PAGE_BYTES >> 20} MB); henting stoppet"
                )
            parts.append(chunk)
    return b"".join(parts)


def _update_ids(url: str, body: bytes, kind: Kind) -> list[int]:
    """The ids of a page's changes (none: the registry has no more); a bad page is an error.

    Only what paging needs is read here; the page itself is checked by read_page as a page
    given by hand would be, once it is kept.
    """
    key = "oppdaterteUnderenheter" if kind is Kind.UNDERENHETER else "oppdaterteEnheter"
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise DownloadError(f"{url}: svaret er ikke JSON (ugyldig fra byte {e.pos})") from None
    embedded = data.get("_embedded") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not ({"_embedded", "page", "_links"} & data.keys()):
        raise DownloadError(f"{url}: svaret er ikke en side fra endringsloggen")
    if not embedded:
        return []  # the registry leaves _embedded out of a page with no changes
    entries = embedded.get(key) if isinstance(embedded, dict) else None
    if not isinstance(entries, list):
        found = ", ".join(embedded) if isinstance(embedded, dict) else type(embedded).__name__
        raise DownloadError(f"{url}: svaret har ikke _embedded.{key} (fant {found})")
    ids = []
    for entry in entries:
        value = entry.get("oppdateringsid") if isinstance(entry, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            ids.append(value)
    if entries and not ids:
        raise DownloadError(f"{url}: ingen av endringene på siden har en oppdateringsid")
    return ids


def _keep(path: Path, body: bytes) -> Path:
    """Write a page to its file (whole or not at all) and return the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, body)
    except OSError as e:
        problem = f"{path.parent}: kan ikke lagre siden fra endringsloggen: {os_reason(e)}"
        raise DownloadError(problem) from None
    return path
