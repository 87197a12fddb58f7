from __future__ import annotations

import json
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import BRREG
from helpers import LoopbackServer, serving, unit_row
from varsel import download
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database
from varsel.dump import Kind
from varsel.errors import DownloadError, UserError
from varsel.feed_fetch import FEED_ACCEPT, fetch_feed
from varsel.registry import import_dump

DUMP_DAY = "2026-11-01"  # the dump's date: the feed starts at this day


def change(update_id: int, orgnr: str, kind: str = "Endring", **fields: Any) -> dict[str, Any]:
    """A change-feed entry as the registry writes it: an Endring patches the fields given."""
    entry: dict[str, Any] = {
        "oppdateringsid": update_id,
        "dato": fields.pop("dato", "2026-11-20T10:00:00.000Z"),
        "organisasjonsnummer": orgnr,
        "endringstype": kind,
    }
    if kind == "Endring":
        entry["endringer"] = [
            {"op": "replace", "path": f"/{k}", "value": v} for k, v in fields.items()
        ]
    entry["_links"] = {
        "enhet": {"href": f"https://data.brreg.no/enhetsregisteret/api/enheter/{orgnr}"}
    }
    return entry


@dataclass
class Feed:
    """What the test registry serves and what it was asked."""

    entries: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"enheter": [], "underenheter": []}
    )
    asked: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    fail_on: dict[int, int] = field(default_factory=dict)  # request number -> HTTP status
    ignores_id: bool = False  # a broken server: always the first page
    retry_after: str | None = None  # sent with a refusal
    most: int | None = None  # the largest page it serves, whatever is asked
    body: bytes | None = None  # served instead of a page, with 200
    url: str = ""


class FeedHandler(BaseHTTPRequestHandler):
    server: LoopbackServer[Feed]

    def do_GET(self) -> None:
        feed = self.server.state
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        feed.asked.append((parts.path, query, self.headers.get("Accept", "")))
        status = feed.fail_on.get(len(feed.asked))
        kind = parts.path.rsplit("/", 1)[-1]
        if (
            status is not None
            or parts.path != f"/api/oppdateringer/{kind}"
            or kind not in feed.entries
        ):
            self._send(status or 404, b'{"status": 404}', feed.retry_after)
            return
        if feed.body is not None:
            self._send(200, feed.body)
            return
        found = sorted(feed.entries[kind], key=lambda e: e["oppdateringsid"])
        if "oppdateringsid" in query and not feed.ignores_id:
            found = [e for e in found if e["oppdateringsid"] >= int(query["oppdateringsid"])]
        if "dato" in query:
            found = [e for e in found if e["dato"] >= query["dato"]]
        size = min(int(query.get("size", "20")), feed.most or 10_000)
        page: dict[str, Any] = {
            "_links": {"self": {"href": f"https://data.brreg.no{self.path}"}},
            "page": {"size": size, "totalElements": len(found), "totalPages": 1, "number": 0},
        }
        if found:  # the registry leaves _embedded out of an empty page
            key = "oppdaterteEnheter" if kind == "enheter" else "oppdaterteUnderenheter"
            page["_embedded"] = {key: found[:size]}
        self._send(200, json.dumps(page).encode())

    def _send(self, status: int, body: bytes, retry_after: str | None = None) -> None:
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[Feed]:
    feed = Feed()
    server = LoopbackServer(FeedHandler, feed)
    feed.url = f"{server.url}/api"
    with serving(server):
        yield feed


@pytest.fixture(autouse=True)
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses before a page is asked again, taken without waiting."""
    pauses: list[float] = []
    monkeypatch.setattr(download, "_sleep", pauses.append)
    return pauses


@pytest.fixture
def imported(db: Database) -> Database:
    import_dump(db, BRREG / "enheter-sample.json", dump_date=DUMP_DAY)
    return db


def settings_for(feed: Feed) -> Settings:
    return Settings(registry_base_url=feed.url, download_timeout=5.0)


def watermark(db: Database) -> int | None:
    value = db.scalar("SELECT last_update_id FROM feed_state WHERE kind = 'enheter'")
    return None if value is None else int(value)


SEVEN = [change(100 + n, "923609016", antallAnsatte=21000 + n) for n in range(7)]


def test_a_first_fetch_starts_at_the_dump_day_and_pages_by_id(
    imported: Database, registry: Feed, tmp_path: Path
) -> None:
    registry.entries["enheter"] = [
        change(90, "923609016", antallAnsatte=1, dato="2026-10-31T23:59:00.000Z"),  # before
        *SEVEN,
    ]
    result = fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path / "sider", size=3)
    assert (len(result.pages), result.changes) == (3, 7)
    assert unit_row(imported, "923609016")["employees"] == 21006  # the newest change wins
    assert watermark(imported) == 106
    # Asked from the dump's day, then above the last id of each page, in id order.
    asked = [q for _, q, _ in registry.asked]
    assert asked[0]["dato"] == f"{DUMP_DAY}T00:00:00.000Z"
    assert "oppdateringsid" not in asked[0]
    assert [q.get("oppdateringsid") for q in asked[1:]] == ["103", "106", "107"]  # 107: none
    assert all(q["includeChanges"] == "true" and q["sort"] == "id,ASC" for q in asked)
    assert all(q["size"] == "3" for q in asked)
    assert {accept for _, _, accept in registry.asked} == {FEED_ACCEPT[Kind.ENHETER]}
    # Each page is kept, and its snapshot names the file.
    kept = sorted(p.name for p in (tmp_path / "sider").iterdir())
    assert kept == [
        "oppdateringer-enheter-100-102.json",
        "oppdateringer-enheter-103-105.json",
        "oppdateringer-enheter-106-106.json",
    ]
    files = imported.query("SELECT file_name FROM snapshots WHERE source = 'feed' ORDER BY id")
    assert [f for (f,) in files] == kept
    assert "7 endringer i enheter hentet (fra 2026-11-01" in result.summary()


def test_the_next_fetch_asks_above_the_last_change_and_finds_nothing_new(
    imported: Database, registry: Feed, tmp_path: Path
) -> None:
    registry.entries["enheter"] = list(SEVEN)
    fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path)
    registry.asked.clear()
    again = fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path)
    assert again.pages == ()
    assert again.changes == 0
    assert registry.asked[0][1]["oppdateringsid"] == "107"
    assert again.summary() == "Ingen nye endringer i enheter (etter oppdateringsid 106)."
    # A day later the registry has more: only they are fetched.
    registry.entries["enheter"].append(change(107, "927124238", antallAnsatte=400))
    later = fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path)
    assert later.changes == 1
    assert unit_row(imported, "927124238")["employees"] == 400
    assert watermark(imported) == 107


def test_after_a_newer_dump_the_fetch_starts_at_its_day_not_at_the_old_id(
    imported: Database, registry: Feed, tmp_path: Path
) -> None:
    registry.entries["enheter"] = list(SEVEN)  # dated 2026-11-20
    fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path)
    # A month's full dump later: the changes before its day are in it.
    newer = json.loads((BRREG / "enheter-sample.json").read_bytes())
    newer[0]["navn"] += " NY"
    (tmp_path / "enheter_alle.json").write_text(json.dumps(newer), "utf-8")
    import_dump(imported, tmp_path / "enheter_alle.json", dump_date="2026-11-25")
    registry.entries["enheter"].append(
        change(300, "927124238", antallAnsatte=401, dato="2026-11-25T08:00:00.000Z")
    )
    registry.asked.clear()
    result = fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path)
    assert registry.asked[0][1]["dato"] == "2026-11-25T00:00:00.000Z"
    assert "oppdateringsid" not in registry.asked[0][1]
    assert result.changes == 1
    assert unit_row(imported, "927124238")["employees"] == 401
    # Then by id again: a change of the dump's day or later is applied.
    registry.asked.clear()
    fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path)
    assert registry.asked[0][1]["oppdateringsid"] == "301"


def test_a_failure_half_way_keeps_the_pages_before_and_the_next_run_goes_on(
    imported: Database, registry: Feed, tmp_path: Path
) -> None:
    registry.entries["enheter"] = list(SEVEN)
    registry.fail_on = {2: 503, 3: 503, 4: 503}  # the second page, tried three times
    settings = settings_for(registry)
    with pytest.raises(DownloadError) as caught:
        fetch_feed(imported, settings, Kind.ENHETER, tmp_path, size=3)
    message = str(caught.value)
    assert "\n" not in message
    assert (
        message
        == f"{registry.url}/oppdateringer/enheter: registeret svarte HTTP 503 Service Unavailable"
    )
    assert caught.value.exit_status == 75
    assert watermark(imported) == 102  # the first page is in, whole
    assert unit_row(imported, "923609016")["employees"] == 21002
    result = fetch_feed(imported, settings, Kind.ENHETER, tmp_path, size=3)
    assert result.changes == 4
    assert watermark(imported) == 106
    assert unit_row(imported, "923609016")["employees"] == 21006
    applied = imported.scalar("SELECT sum(records) FROM snapshots WHERE source = 'feed'")
    assert applied == 7  # each change applied once


def test_pages_are_not_kept_unless_asked_and_the_snapshot_names_the_address(
    imported: Database, registry: Feed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages hold sole proprietors' names and addresses: by default they are applied from a
    # private temporary file and gone after.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    tempfile.tempdir = None  # read TMPDIR again
    try:
        registry.entries["enheter"] = list(SEVEN)
        result = fetch_feed(imported, settings_for(registry), Kind.ENHETER, size=4)
    finally:
        tempfile.tempdir = None
    assert result.changes == 7
    assert list((tmp_path / "tmp").iterdir()) == []
    sources = imported.query(
        "SELECT file_name, file_path FROM snapshots WHERE source = 'feed' ORDER BY id"
    )
    assert sources == [
        (
            "oppdateringer-enheter-100-103.json",
            f"{registry.url}/oppdateringer/enheter?dato=2026-11-01T00%3A00%3A00.000Z&size=4"
            "&includeChanges=true&sort=id%2CASC",
        ),
        (
            "oppdateringer-enheter-104-106.json",
            f"{registry.url}/oppdateringer/enheter?oppdateringsid=104&size=4"
            "&includeChanges=true&sort=id%2CASC",
        ),
    ]


def test_a_busy_registry_is_asked_again_after_a_pause(
    imported: Database, registry: Feed, tmp_path: Path, slept: list[float]
) -> None:
    registry.entries["enheter"] = list(SEVEN)
    registry.fail_on = {2: 503, 3: 429}
    registry.retry_after = "45"
    said: list[str] = []
    result = fetch_feed(imported, settings_for(registry), Kind.ENHETER, size=4, on_wait=said.append)
    assert result.changes == 7
    assert watermark(imported) == 106
    assert said == [
        f"{registry.url}/oppdateringer/enheter: registeret svarte HTTP 503 Service Unavailable; "
        "prøver igjen om 45 s",
        f"{registry.url}/oppdateringer/enheter: registeret svarte HTTP 429 Too Many Requests; "
        "prøver igjen om 45 s",
    ]
    # The pauses: the first as planned (the registry's 45 s is longer), the second its own.
    assert slept == [45.0, 45.0]
    assert [q.get("oppdateringsid") for _, q, _ in registry.asked] == [
        None,
        "104",
        "104",
        "104",
        "107",
    ]


def test_a_registry_serving_smaller_pages_than_asked_is_followed_to_the_end(
    imported: Database, registry: Feed
) -> None:
    registry.entries["enheter"] = list(SEVEN)
    registry.most = 3  # asked for 1,000
    result = fetch_feed(imported, settings_for(registry), Kind.ENHETER)
    assert (len(result.pages), result.changes) == (3, 7)
    assert watermark(imported) == 106


def test_a_removal_fetched_from_the_feed_erases_the_unit(
    imported: Database, registry: Feed, tmp_path: Path
) -> None:
    registry.entries["enheter"] = [change(200, "912000354", "Fjernet")]
    fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path)
    assert imported.scalar("SELECT count(*) FROM units WHERE orgnr = '912000354'") == 0
    assert imported.scalar("SELECT count(*) FROM contacts WHERE orgnr = '912000354'") == 0


def test_a_server_that_ignores_the_id_is_stopped_and_nothing_is_applied_twice(
    imported: Database, registry: Feed, tmp_path: Path
) -> None:
    registry.entries["enheter"] = list(SEVEN)
    registry.ignores_id = True
    with pytest.raises(DownloadError, match="endringer før oppdateringsid 103"):
        fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path, size=3)
    assert len(registry.asked) == 2
    assert imported.scalar("SELECT sum(records) FROM snapshots WHERE source = 'feed'") == 3


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html>Vedlikehold</html>", "svaret er ikke JSON (ugyldig fra byte 0)"),
        (b'{"enheter": []}', "svaret er ikke en side fra endringsloggen"),
        (b'{"_embedded": {"enheter": []}}', "svaret har ikke _embedded.oppdaterteEnheter"),
        (
            b'{"_embedded": {"oppdaterteEnheter": [{"oppdateringsid": "x"}]}}',
            "ingen av endringene på siden har en oppdateringsid",
        ),
    ],
)
def test_an_answer_that_is_no_page_changes_nothing_and_is_one_line(
    imported: Database, registry: Feed, tmp_path: Path, body: bytes, says: str
) -> None:
    registry.body = body
    before = imported.scalar("SELECT count(*) FROM snapshots")
    with pytest.raises(DownloadError) as caught:
        fetch_feed(imported, settings_for(registry), Kind.ENHETER, tmp_path / "sider")
    assert str(caught.value).startswith(f"{registry.url}/oppdateringer/enheter: {says}")
    assert "\n" not in str(caught.value)
    assert imported.scalar("SELECT count(*) FROM snapshots") == before
    assert watermark(imported) is None
    assert not (tmp_path / "sider").exists()


def test_a_store_without_an_import_cannot_follow_the_feed(
    db: Database, registry: Feed, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match="importer et uttrekk først"):
        fetch_feed(db, settings_for(registry), Kind.ENHETER, tmp_path)
    assert registry.asked == []


def test_an_answer_that_is_no_feed_page_is_refused_in_one_line(
    imported: Database, registry: Feed, tmp_path: Path
) -> None:
    registry.entries["enheter"] = list(SEVEN)
    # The sub-units' page where the units' was asked for: the wrong key in _embedded.
    registry.entries["underenheter"] = []
    with pytest.raises(DownloadError) as caught:
        fetch_feed(
            imported,
            Settings(registry_base_url=registry.url + "/nowhere", download_timeout=5.0),
            Kind.ENHETER,
            tmp_path / "sider",
        )
    assert "HTTP 404" in str(caught.value)
    assert watermark(imported) is None
    assert not (tmp_path / "sider").exists()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where --keep's default folder goes


def run(feed: Feed, db_path: Path, *args: str) -> Any:
    env = {"VARSEL_REGISTRY_BASE_URL": feed.url, "VARSEL_DOWNLOAD_TIMEOUT": "5"}
    return CliRunner().invoke(cli, ["--db", str(db_path), "registry", "update", *args], env=env)


def imported_store(tmp_path: Path) -> Path:
    """A SQLite store with the sample units imported by the command line."""
    store = tmp_path / "varsel.db"
    sample = str(BRREG / "enheter-sample.json")
    args = ["--db", str(store), "registry", "import", sample, "--dump-date", DUMP_DAY]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    return store


def test_registry_update_fetch_prints_each_page_and_the_total(
    registry: Feed, tmp_path: Path
) -> None:
    store = imported_store(tmp_path)
    registry.entries["enheter"] = list(SEVEN)
    result = run(registry, store, "--fetch", "--keep", str(tmp_path / "sider"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("oppdateringer-enheter-100-106.json: 7 endringer i enheter")
    assert lines[-1] == (
        "7 endringer i enheter hentet (fra 2026-11-01, dagen uttrekket er fra) på 1 side, "
        "og lagt inn."
    )
    # Only the kind the store holds is followed: no sub-units were imported.
    assert {path for path, _, _ in registry.asked} == {"/api/oppdateringer/enheter"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "oppgi minst én fil, eller --fetch"),
        (("side.json", "--fetch"), "oppgi filer eller --fetch, ikke begge"),
        (("side.json", "--kind", "enheter"), "--kind gjelder bare sammen med --fetch"),
        (("side.json", "--keep", "sider"), "--keep gjelder bare sammen med --fetch"),
        (("--fetch",), "finnes ikke (lag det med «varsel init»)"),
    ],
)
def test_registry_update_refuses_what_it_cannot_do_in_one_line(
    registry: Feed, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = run(registry, tmp_path / "varsel.db", *args)
    assert result.exit_code == 2
    assert says in result.output
    assert "Traceback" not in result.output
    assert registry.asked == []
    assert not (tmp_path / "varsel.db").exists()


def test_registry_update_fetch_on_a_store_without_a_dump_is_refused(
    registry: Feed, tmp_path: Path
) -> None:
    store = tmp_path / "varsel.db"
    assert CliRunner().invoke(cli, ["--db", str(store), "init"]).exit_code == 0
    result = run(registry, store, "--fetch")
    assert result.exit_code == 2
    assert result.output == (
        "varsel: lageret har ingen import av enheter å bygge videre på: importer et uttrekk "
        "først (varsel registry download --kind enheter og varsel registry import)\n"
    )
    assert registry.asked == []


def test_registry_update_fetch_with_the_registry_down_is_one_line(tmp_path: Path) -> None:
    store = imported_store(tmp_path)
    down = Feed(url="http://127.0.0.1:9/api")  # discard: nothing listens
    result = run(down, store, "--fetch")
    assert result.exit_code == 75  # EX_TEMPFAIL: the timer that runs it tries again later
    url = "http://127.0.0.1:9/api/oppdateringer/enheter"
    assert result.output.splitlines() == [
        f"{url}: kunne ikke koble til (tilkoblingen ble avvist); prøver igjen om 5 s",
        f"{url}: kunne ikke koble til (tilkoblingen ble avvist); prøver igjen om 30 s",
        f"varsel: {url}: kunne ikke koble til (tilkoblingen ble avvist)",  # the error: one line
    ]


def test_registry_update_fetch_keeps_no_page_by_default(registry: Feed, tmp_path: Path) -> None:
    store = imported_store(tmp_path)
    registry.entries["enheter"] = list(SEVEN)
    result = run(registry, store, "--fetch")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("varsel.db")) == []
