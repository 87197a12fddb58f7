"""download_dump against a real HTTP server on 127.0.0.1 that plays the registry."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import LoopbackServer, serving
from varsel import download
from varsel.cli import cli
from varsel.config import Settings
from varsel.download import (
    DownloadResult,
    download_dump,
    dump_date_from,
    read_sidecar,
    sidecar_path,
)
from varsel.errors import DownloadError
from varsel.progress import ProgressCallback

FIXTURE = Path("/work/shared/fixtures/brreg/enheter-sample.json")
JAVA_DATE = "Fri Nov 27 05:12:33 CET 2026"
JSON_ACCEPT = "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip;charset=UTF-8"
SUB_ACCEPT = "application/vnd.brreg.enhetsregisteret.underenhet.v2+gzip;charset=UTF-8"
DUMP_PATHS = {
    "/api/enheter/lastned",
    "/api/enheter/lastned/csv",
    "/api/underenheter/lastned",
    "/api/underenheter/lastned/csv",
}


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


JSON_DUMP = gz(FIXTURE.read_bytes())
CSV_DUMP = gz('\ufeff"organisasjonsnummer","navn"\n"810034882","SANDNES ELEKTRISKE AS"\n'.encode())


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]


@dataclass
class Registry:
    """What the fake registry serves, and how it misbehaves when told to."""

    url: str = ""
    body: bytes = JSON_DUMP
    etag: str | None = '"v1"'
    last_modified: str | None = JAVA_DATE
    status: int = 200
    ignore_conditional: bool = False
    # Send only this many bytes of the body, after promising all of it in Content-Length.
    cut_after: int | None = None
    slow: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    seen: list[Seen] = field(default_factory=list)
    # How the next requests fail before the server answers as above: an HTTP status, or
    # "cut" for a body that breaks off after 1,000 bytes; one entry a request.
    failures: list[int | str] = field(default_factory=list)
    retry_after: str | None = None


class RegistryHandler(BaseHTTPRequestHandler):
    server: LoopbackServer[Registry]

    def do_GET(self) -> None:
        reg = self.server.state
        reg.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        if reg.slow:
            reg.release.wait(10)
        failure = reg.failures.pop(0) if reg.failures else None
        if failure == "cut":
            self._send(200, reg.body, "application/octet-stream", cut=1000)
        elif isinstance(failure, int):
            self._send(failure, b"opptatt", "text/plain")
        elif self.path not in DUMP_PATHS:
            self._send(404, b"not found", "text/plain")
        elif reg.status != 200:
            body = json.dumps({"status": reg.status, "error": "Feil"}).encode()
            self._send(reg.status, body, "application/json")
        elif (
            not reg.ignore_conditional
            and reg.etag is not None
            and self.headers.get("If-None-Match") == reg.etag
        ):
            self.send_response(304)
            self._validators()
            self.end_headers()
        else:
            self._send(200, reg.body, "application/octet-stream")

    def _validators(self) -> None:
        reg = self.server.state
        if reg.etag is not None:
            self.send_header("ETag", reg.etag)
        if reg.last_modified is not None:
            self.send_header("Last-Modified", reg.last_modified)

    def _send(self, status: int, body: bytes, content_type: str, cut: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status != 200 and self.server.state.retry_after is not None:
            self.send_header("Retry-After", self.server.state.retry_after)
        self._validators()
        self.end_headers()
        cut = self.server.state.cut_after if cut is None else cut
        # The client stops reading on purpose when it sees an unchanged dump.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body if cut is None else body[:cut])

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry()
    server = LoopbackServer(RegistryHandler, reg)
    reg.url = server.url
    with serving(server):
        try:
            yield reg
        finally:
            reg.release.set()  # a slow answer waiting on it ends before the server stops


@pytest.fixture(autouse=True)
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses before the registry is asked again, taken without waiting."""
    pauses: list[float] = []
    monkeypatch.setattr(download, "_sleep", pauses.append)
    return pauses


def settings_for(reg: Registry, timeout: float = 5.0) -> Settings:
    return Settings(registry_base_url=f"{reg.url}/api", download_timeout=timeout)


def fetch(
    reg: Registry,
    out: Path,
    *,
    kind: str = "enheter",
    fmt: str = "json",
    progress: ProgressCallback | None = None,
    on_wait: list[str] | None = None,
) -> DownloadResult:
    return download_dump(
        settings_for(reg),
        kind=kind,
        fmt=fmt,
        out=out,
        progress=progress,
        on_wait=None if on_wait is None else on_wait.append,
    )


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_first_download_writes_file_and_sidecar(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    result = fetch(registry, out)

    assert out.read_bytes() == JSON_DUMP
    assert not result.skipped
    assert result.bytes == len(JSON_DUMP)
    assert result.sha256 == hashlib.sha256(JSON_DUMP).hexdigest()
    assert result.dump_date == "2026-11-27"
    assert result.summary().startswith("Lastet ned enheter (json) til enheter_alle.json.gz: ")
    meta = read_sidecar(out)
    assert meta is not None
    assert meta["url"] == f"{registry.url}/api/enheter/lastned"
    assert (meta["kind"], meta["format"]) == ("enheter", "json")
    assert meta["etag"] == '"v1"'
    assert meta["last_modified"] == JAVA_DATE
    assert meta["sha256"] == hashlib.sha256(JSON_DUMP).hexdigest()
    assert meta["size"] == str(len(JSON_DUMP))
    assert meta["dump_date"] == "2026-11-27"
    assert meta["downloaded_at"].endswith("Z")
    assert files_in(tmp_path) == {"enheter_alle.json.gz", "enheter_alle.json.gz.meta.json"}
    [seen] = registry.seen
    assert seen.path == "/api/enheter/lastned"
    assert seen.headers["accept"] == JSON_ACCEPT
    assert seen.headers["user-agent"].startswith("varsel/")
    assert "if-none-match" not in seen.headers


def test_underenheter_use_their_own_accept_header(registry: Registry, tmp_path: Path) -> None:
    registry.body = gz((FIXTURE.parent / "underenheter-sample.json").read_bytes())
    fetch(registry, tmp_path / "underenheter_alle.json.gz", kind="underenheter")

    [seen] = registry.seen
    assert seen.path == "/api/underenheter/lastned"
    assert seen.headers["accept"] == SUB_ACCEPT


def test_second_download_is_conditional_and_skipped(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    before = out.stat()

    result = fetch(registry, out)

    assert result.skipped
    assert result.etag == '"v1"'
    assert result.dump_date == "2026-11-27"
    assert result.sha256 == hashlib.sha256(JSON_DUMP).hexdigest()
    assert result.summary() == (
        'Uendret siden forrige nedlasting (ETag "v1"): enheter_alle.json.gz beholdes.'
    )
    second = registry.seen[1]
    assert second.headers["if-none-match"] == '"v1"'
    assert second.headers["if-modified-since"] == JAVA_DATE
    assert out.stat().st_mtime_ns == before.st_mtime_ns


def test_server_ignoring_conditional_headers_with_same_etag_is_skipped(
    registry: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    before = out.stat()
    sidecar = sidecar_path(out).read_text()
    registry.ignore_conditional = True

    result = fetch(registry, out)

    assert result.skipped
    after = out.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sidecar_path(out).read_text() == sidecar
    assert files_in(tmp_path) == {"enheter_alle.json.gz", "enheter_alle.json.gz.meta.json"}


def test_new_etag_replaces_the_file(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    new_dump = gz(b'[{"organisasjonsnummer": "810034882"}]')
    registry.body, registry.etag = new_dump, '"v2"'
    registry.last_modified = "Sat Nov 28 05:10:02 CET 2026"

    result = fetch(registry, out)

    assert not result.skipped
    assert out.read_bytes() == new_dump
    meta = read_sidecar(out)
    assert meta is not None
    assert (meta["etag"], meta["dump_date"]) == ('"v2"', "2026-11-28")
    assert meta["sha256"] == hashlib.sha256(new_dump).hexdigest()


def test_same_etag_but_other_last_modified_is_downloaded(
    registry: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    registry.ignore_conditional = True
    registry.last_modified = "Sat Nov 28 05:10:02 CET 2026"

    assert not fetch(registry, out).skipped


def test_missing_file_is_downloaded_without_conditional_headers(
    registry: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    out.unlink()

    result = fetch(registry, out)

    assert not result.skipped
    assert out.read_bytes() == JSON_DUMP
    assert "if-none-match" not in registry.seen[1].headers
    assert "if-modified-since" not in registry.seen[1].headers


def test_file_of_other_size_is_downloaded_again(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    out.write_bytes(JSON_DUMP[:100])

    result = fetch(registry, out)

    assert not result.skipped
    assert out.read_bytes() == JSON_DUMP
    assert "if-none-match" not in registry.seen[1].headers


def test_server_without_validators_is_downloaded_every_time(
    registry: Registry, tmp_path: Path
) -> None:
    registry.etag = registry.last_modified = None
    out = tmp_path / "enheter_alle.json.gz"
    first = fetch(registry, out)

    assert not fetch(registry, out).skipped
    meta = read_sidecar(out)
    assert meta is not None
    # With no Last-Modified to go by, the dump is dated by the day it was fetched: a guess,
    # said in the sidecar (which read_sidecar leaves out: not text) and in the summary.
    assert meta["dump_date"] == first.dump_date == meta["downloaded_at"][:10]
    assert json.loads(sidecar_path(out).read_text("utf-8"))["dump_date_guessed"] is True
    assert first.summary().endswith(
        f" Dumpdatoen {first.dump_date} er gjettet fra nedlastingsdagen (registeret sendte "
        "ingen Last-Modified); importen sier det samme. Vet du datoen, importer med "
        "--dump-date ÅÅÅÅ-MM-DD."
    )


def test_a_date_from_last_modified_is_not_said_to_be_guessed(
    registry: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    result = fetch(registry, out)
    assert "gjettet" not in result.summary()
    assert "dump_date_guessed" not in json.loads(sidecar_path(out).read_text("utf-8"))


def assert_previous_kept(out: Path, old_sidecar: str) -> None:
    assert out.read_bytes() == JSON_DUMP
    assert sidecar_path(out).read_text() == old_sidecar
    assert files_in(out.parent) == {out.name, sidecar_path(out).name}


def test_truncated_gzip_keeps_previous_file(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    old_sidecar = sidecar_path(out).read_text()
    new_dump = gz(FIXTURE.read_bytes().replace(b"OSLO", b"ASKER"))
    registry.body, registry.etag = new_dump[: len(new_dump) // 2], '"v2"'

    with pytest.raises(DownloadError) as e:
        fetch(registry, out)

    url = f"{registry.url}/api/enheter/lastned"
    assert e.value.message.startswith(f"{url}: ødelagt gzip ved byte ")
    assert e.value.message.endswith(
        "filen slutter før gzip-strømmen er ferdig (avkortet nedlasting?); forrige fil er beholdt"
    )
    assert_previous_kept(out, old_sidecar)


def test_bad_crc_keeps_previous_file(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    old_sidecar = sidecar_path(out).read_text()
    broken = bytearray(JSON_DUMP)
    broken[-8] ^= 0xFF  # first byte of the CRC32 in the gzip trailer
    registry.body, registry.etag = bytes(broken), '"v2"'

    with pytest.raises(DownloadError, match=r"ødelagt gzip: kontrollsummen \(CRC\) stemmer ikke"):
        fetch(registry, out)

    assert_previous_kept(out, old_sidecar)


def test_connection_dropped_mid_body_keeps_previous_file(
    registry: Registry, tmp_path: Path, slept: list[float]
) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    fetch(registry, out)
    old_sidecar = sidecar_path(out).read_text()
    registry.etag, registry.cut_after = '"v2"', 1000
    said: list[str] = []

    with pytest.raises(DownloadError, match=r"/api/enheter/lastned: nedlastingen stoppet \(") as e:
        fetch(registry, out, on_wait=said)

    assert e.value.exit_status == 75
    assert_previous_kept(out, old_sidecar)
    # Tried three times, the whole dump each time: a broken connection may not break again.
    url = f"{registry.url}/api/enheter/lastned"
    assert said == [
        f"{url}: forbindelsen ble brutt; prøver igjen om 5 s",
        f"{url}: forbindelsen ble brutt; prøver igjen om 30 s",
    ]
    assert slept == [5.0, 30.0]
    assert len(registry.seen) == 4  # the first download, and three tries of the second


def test_a_busy_registry_or_a_broken_connection_is_tried_again(
    registry: Registry, tmp_path: Path, slept: list[float]
) -> None:
    registry.failures = [503, "cut"]
    registry.retry_after = "120"
    out = tmp_path / "enheter_alle.json.gz"
    said: list[str] = []

    result = fetch(registry, out, on_wait=said)

    assert out.read_bytes() == JSON_DUMP
    assert result.bytes == len(JSON_DUMP)
    url = f"{registry.url}/api/enheter/lastned"
    assert said == [
        f"{url}: registeret svarte HTTP 503 Service Unavailable; prøver igjen om 120 s",
        f"{url}: forbindelsen ble brutt; prøver igjen om 30 s",
    ]
    assert slept == [120.0, 30.0]  # the registry's Retry-After where it is the longer
    assert files_in(tmp_path) == {out.name, sidecar_path(out).name}  # no part file left


def test_a_retry_after_beyond_five_minutes_is_not_waited_for_longer(
    registry: Registry, tmp_path: Path, slept: list[float]
) -> None:
    registry.failures = [429]
    registry.retry_after = "86400"
    fetch(registry, tmp_path / "enheter_alle.json.gz")
    assert slept == [300.0]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            b"<!DOCTYPE html><html><body>Vedlikehold</body></html>",
            "svaret er ikke gzip (begynner med «<!DOCTYPE html><html><body>Vedlikehold</»)",
        ),
        (
            gz(b"\n  <html>Vedlikehold</html>"),
            "innholdet ser ikke ut som en JSON-dump fra registeret "
            "(venter [, fant '<html>Vedlikehold</html>')",
        ),
    ],
)
def test_content_that_is_no_dump_is_refused(
    registry: Registry, tmp_path: Path, body: bytes, problem: str
) -> None:
    registry.body = body
    out = tmp_path / "enheter_alle.json.gz"

    with pytest.raises(DownloadError) as e:
        fetch(registry, out)

    url = f"{registry.url}/api/enheter/lastned"
    assert e.value.message == f"{url}: {problem}"
    assert files_in(tmp_path) == set()


def test_csv_dump_uses_csv_path(registry: Registry, tmp_path: Path) -> None:
    registry.body = CSV_DUMP
    out = tmp_path / "enheter_alle.csv.gz"

    result = fetch(registry, out, fmt="csv")

    assert out.read_bytes() == CSV_DUMP
    assert result.summary().startswith("Lastet ned enheter (csv) til enheter_alle.csv.gz: ")
    [seen] = registry.seen
    assert seen.path == "/api/enheter/lastned/csv"
    assert seen.headers["accept"] == "text/csv"


def test_json_body_is_no_csv_dump(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="ser ikke ut som en CSV-dump"):
        fetch(registry, tmp_path / "enheter_alle.csv.gz", fmt="csv")


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, f"HTTP 400 Bad Request (godtar den Accept-hodet «{JSON_ACCEPT}»?)"),
        (500, "HTTP 500 Internal Server Error"),
    ],
)
def test_http_error_status(registry: Registry, tmp_path: Path, status: int, text: str) -> None:
    registry.status = status

    with pytest.raises(DownloadError) as e:
        fetch(registry, tmp_path / "enheter_alle.json.gz")

    url = f"{registry.url}/api/enheter/lastned"
    assert e.value.message == f"{url}: registeret svarte {text}"
    assert e.value.exit_status == 2
    assert files_in(tmp_path) == set()
    assert len(registry.seen) == 1  # not a passing state of the registry: not asked again


def test_connection_refused(tmp_path: Path, slept: list[float]) -> None:
    # A bound socket that never listens: connecting to it is refused, and no one else can
    # take the port while the test runs.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        settings = Settings(registry_base_url=f"http://127.0.0.1:{port}/api")
        with pytest.raises(DownloadError) as e:
            download_dump(settings, kind="enheter", fmt="json", out=tmp_path / "e.json.gz")

    assert e.value.message == (
        f"http://127.0.0.1:{port}/api/enheter/lastned: kunne ikke koble til "
        "(tilkoblingen ble avvist)"
    )
    assert e.value.exit_status == 75  # tried three times: cron may try again later
    assert slept == [5.0, 30.0]


def test_timeout(registry: Registry, tmp_path: Path) -> None:
    registry.slow = True
    settings = settings_for(registry, timeout=0.2)

    with pytest.raises(DownloadError) as e:
        download_dump(settings, kind="enheter", fmt="json", out=tmp_path / "e.json.gz")

    url = f"{registry.url}/api/enheter/lastned"
    assert e.value.message == f"{url}: registeret svarte ikke innen 0.2 s"
    assert e.value.exit_status == 75
    assert len(registry.seen) == 3


def test_progress_is_told_the_final_byte_count(registry: Registry, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None, int]] = []

    def progress(done: int, total: int | None, records: int) -> None:
        calls.append((done, total, records))

    fetch(registry, tmp_path / "enheter_alle.json.gz", progress=progress)

    assert calls[0] == (0, len(JSON_DUMP), 0)
    assert calls[-1] == (len(JSON_DUMP), len(JSON_DUMP), 0)
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("Fri Nov 27 05:12:33 CET 2026", "2026-11-27"),
        ("Mon Jun 01 23:59:59 CEST 2026", "2026-06-01"),
        ("Fri, 27 Nov 2026 04:12:33 GMT", "2026-11-27"),
        ("igår", None),
        ("Fri Foo 27 05:12:33 CET 2026", None),
        ("", None),
    ],
)
def test_dump_date_from_last_modified(text: str, day: str | None) -> None:
    assert dump_date_from(text) == day


def test_read_sidecar_without_or_with_broken_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    assert read_sidecar(out) is None
    sidecar_path(out).write_text("{not json")
    assert read_sidecar(out) is None


def test_cli_registry_download(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "enheter_alle.json.gz"
    args = ["--db", str(tmp_path / "varsel.db"), "registry", "download", "--out", str(out)]
    env = {"VARSEL_REGISTRY_BASE_URL": f"{registry.url}/api"}
    runner = CliRunner()

    first = runner.invoke(cli, args, env=env)
    second = runner.invoke(cli, args, env=env)
    registry.status = 500
    registry.etag = '"v2"'
    third = runner.invoke(cli, args, env=env)

    assert first.exit_code == 0, first.output
    assert "Lastet ned enheter (json) til enheter_alle.json.gz:" in first.stdout
    assert out.read_bytes() == JSON_DUMP
    assert second.exit_code == 0, second.output
    assert " ".join(second.stdout.split()) == (
        'Uendret siden forrige nedlasting (ETag "v1"): enheter_alle.json.gz beholdes.'
    )
    assert third.exit_code == 2
    assert " ".join(third.stderr.split()) == (
        f"varsel: {registry.url}/api/enheter/lastned: "
        "registeret svarte HTTP 500 Internal Server Error"
    )


def test_cli_says_on_stderr_when_it_waits_for_the_registry(
    registry: Registry, tmp_path: Path
) -> None:
    registry.failures = [502]
    out = tmp_path / "enheter_alle.json.gz"
    args = ["--db", str(tmp_path / "varsel.db"), "registry", "download", "--out", str(out)]
    result = CliRunner().invoke(cli, args, env={"VARSEL_REGISTRY_BASE_URL": f"{registry.url}/api"})
    assert result.exit_code == 0, result.output
    assert (
        f"{registry.url}/api/enheter/lastned: registeret svarte HTTP 502 Bad Gateway; "
        "prøver igjen om 5 s"
    ) in " ".join(result.stderr.split())
    assert "Lastet ned enheter (json)" in result.stdout
    assert out.read_bytes() == JSON_DUMP


@pytest.mark.parametrize("base", ["data.brreg.no/enhetsregisteret/api", "", "ftp://mirror/api"])
def test_a_base_url_that_is_not_http_is_said_to_be_a_wrong_setting(
    tmp_path: Path, base: str
) -> None:
    out = tmp_path / "sub" / "enheter.json.gz"
    result = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "v.db"), "registry", "download", "--out", str(out)],
        env={"VARSEL_REGISTRY_BASE_URL": base},
    )
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: VARSEL_REGISTRY_BASE_URL: «{base}» er ikke en http(s)-adresse; innstillingen "
        "er feil (standard: https://data.brreg.no/enhetsregisteret/api)\n",
    )
    assert not out.parent.exists()


def test_a_base_url_from_the_settings_file_is_named_by_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "varsel.toml"
    config.write_text("[varsel]\nregistry_base_url = 'ftp://mirror/api'\n", "utf-8")
    out = tmp_path / "enheter.json.gz"
    args = ["--config", str(config), "--db", str(tmp_path / "v.db"), "registry", "download"]
    result = CliRunner().invoke(
        cli, [*args, "--out", str(out)], env={"VARSEL_REGISTRY_BASE_URL": None}
    )
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: {config}, linje 2: [varsel] registry_base_url: «ftp://mirror/api» er ikke en "
        "http(s)-adresse; innstillingen er feil (standard: https://data.brreg.no/enhetsregisteret"
        "/api)\n",
    )


def test_an_enheter_dump_served_for_underenheter_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "underenheter_alle.json.gz"
    with pytest.raises(DownloadError) as caught:
        fetch(registry, out, kind="underenheter")
    assert caught.value.message == (
        f"{registry.url}/api/underenheter/lastned: serveren sendte enheter, ikke underenheter "
        "(er VARSEL_REGISTRY_BASE_URL riktig?)"
    )
    assert files_in(tmp_path) == set()


def test_a_folder_made_for_the_download_is_said(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "data" / "enheter_alle.json.gz"
    made = fetch(registry, out)
    assert made.summary().endswith(f" Mappen {out.parent} er laget.")
    registry.body = gz(FIXTURE.read_bytes() + b" ")  # a new version, into the folder there now
    registry.etag = '"v2"'
    assert "Mappen" not in fetch(registry, out).summary()
