"""Download the registry's nightly dumps to disk, skipping them when nothing has changed."""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar, cast

import httpx
from isal import igzip, isal_zlib

from varsel import __version__
from varsel.clock import utcnow, utcnow_iso
from varsel.config import Settings
from varsel.dump import gzip_problem
from varsel.errors import ConfigError, DownloadError, VarselError, os_reason, quoted
from varsel.i18n import fmt_bytes, fmt_seconds
from varsel.progress import ProgressCallback

KINDS = ("enheter", "underenheter")
FORMATS = ("json", "csv")

# The JSON dump answers HTTP 400 to any other Accept header (registry-format.md §1).
_JSON_ACCEPT = {
    "enheter": "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip;charset=UTF-8",
    "underenheter": "application/vnd.brreg.enhetsregisteret.underenhet.v2+gzip;charset=UTF-8",
}
# The registry documents no media type for the CSV dump, and known clients send none and get
# gzip. text/csv states what we want without naming a vendor type that might be refused; the
# body is judged by its content (gzip holding a CSV header), never by its Content-Type.
_CSV_ACCEPT = "text/csv"

# Seconds before the second and the third try when the registry could not serve (a busy
# server, a dropped connection): a nightly run that gave up at the first 503 would leave the
# store a day behind.
RETRY_DELAYS = (5.0, 30.0)
MOST_RETRY_AFTER = 300.0  # the longest Retry-After waited for
_sleep = time.sleep  # tests wait for nothing

_CHUNK = 256 * 1024
# Enough decompressed text to get past a BOM and leading whitespace to the first token.
_HEAD = 4096
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_FIRST_TOKEN = {"json": b"[", "csv": b'"organisasjonsnummer"'}

# isal's igzip is the standard GzipFile with ISA-L's inflate, several times faster on a
# 200 MB dump, but it ships without annotations; this typed name keeps mypy strict.
_open_gzip: Callable[[Path], gzip.GzipFile] = igzip.IGzipFile
# isal's stubs declare its error as an instance; at run time it is the exception class.
_IsalError = cast("type[Exception]", isal_zlib.error)

# Java's Date.toString(): "Fri Nov 27 05:12:33 CET 2026" (always English, day zero-padded).
_JAVA_DATE = re.compile(
    r"^[A-Z][a-z]{2} (?P<month>[A-Z][a-z]{2}) (?P<day>\d{1,2}) \d{2}:\d{2}:\d{2} \S+ "
    r"(?P<year>\d{4})$"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}


@dataclass(frozen=True)
class DownloadResult:
    """What one download did: the file, whether it was left as it was, and its version."""

    path: Path
    kind: str
    fmt: str
    url: str
    skipped: bool
    bytes: int
    etag: str
    last_modified: str
    dump_date: str
    sha256: str
    seconds: float
    made_folder: Path | None = None  # the folder of `path`, made for this download
    date_guessed: bool = False  # no date in Last-Modified: dump_date is the download's day

    def summary(self) -> str:
        """One line for the user, in Norwegian."""
        if self.skipped:
            if self.etag:
                version = f"ETag {self.etag}"
            elif self.last_modified:
                version = f"Last-Modified {self.last_modified}"
            else:
                version = f"dumpdato {self.dump_date}"
            return f"Uendret siden forrige nedlasting ({version}): {self.path.name} beholdes."
        from varsel.import_checks import FROM_DOWNLOAD_DAY

        made = f" Mappen {self.made_folder} er laget." if self.made_folder else ""
        guessed = (
            f" Dumpdatoen {self.dump_date} er gjettet {FROM_DOWNLOAD_DAY}; importen sier det "
            "samme. Vet du datoen, importer med --dump-date ÅÅÅÅ-MM-DD."
            if self.date_guessed
            else ""
        )
        return (
            f"Lastet ned {self.kind} ({self.fmt}) til {self.path.name}: "
            f"{fmt_bytes(self.bytes)} på {fmt_seconds(self.seconds)}.{made}{guessed}"
        )


def dump_url(settings: Settings, kind: str, fmt: str) -> str:
    """The address of one dump: /{kind}/lastned for JSON, /{kind}/lastned/csv for CSV."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, not {fmt!r}")
    url = f"{api_base(settings)}/{kind}/lastned"
    return url + "/csv" if fmt == "csv" else url


def sidecar_path(path: Path) -> Path:
    """Where the facts about a downloaded dump are kept: `<path>.meta.json`."""
    return path.with_name(path.name + ".meta.json")


def read_sidecar(path: Path) -> dict[str, str] | None:
    """The sidecar of the dump at `path`, or None if it is missing or unreadable."""
    try:
        data = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def api_base(settings: Settings) -> str:
    """The registry API's address from the settings, without a trailing slash."""
    base = settings.registry_base_url
    if not re.match(r"https?://[^/\s]+", base):
        # A setting, not the network: httpx would say "Request URL is missing an 'http://'".
        raise ConfigError(
            f"{settings.origin('registry_base_url')}: «{base}» er ikke en http(s)-adresse; "
            "innstillingen er feil "
            "(standard: https://data.brreg.no/enhetsregisteret/api)"
        )
    return base.rstrip("/")


def download_dump(
    settings: Settings,
    *,
    kind: str,
    fmt: str,
    out: Path,
    progress: ProgressCallback | None = None,
    client: httpx.Client | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> DownloadResult:
    """Fetch one registry dump to `out`, unless the copy already there is the newest.

    A registry that is busy (429, 502-504) or a connection that fails or breaks off is tried
    again from the start after RETRY_DELAYS, each pause said to `on_wait`; the previous file
    stays until a whole new one has been checked.
    """
    url = dump_url(settings, kind, fmt)
    timeout = settings.download_timeout
    with contextlib.ExitStack() as stack:
        if client is None:
            # The timeout bounds each connect, read and write, not the whole transfer: the
            # full dump takes longer than a minute on a slow line, and that is fine.
            client = stack.enter_context(httpx.Client(timeout=httpx.Timeout(timeout)))
        http = client
        return with_retries(
            url,
            out,
            timeout,
            lambda: _download(http, url, kind=kind, fmt=fmt, out=out, progress=progress),
            on_wait,
        )


def _download(
    client: httpx.Client,
    url: str,
    *,
    kind: str,
    fmt: str,
    out: Path,
    progress: ProgressCallback | None,
) -> DownloadResult:
    """One try of download_dump."""
    started = time.monotonic()
    previous = _usable_sidecar(out)
    headers = _request_headers(kind, fmt, previous)
    with contextlib.ExitStack() as stack:
        response = stack.enter_context(
            client.stream("GET", url, headers=headers, follow_redirects=True)
        )
        etag = response.headers.get("ETag", "")
        last_modified = response.headers.get("Last-Modified", "")
        if previous is not None and (
            response.status_code == 304
            # A server that ignores conditional headers still names its version; leaving the
            # `with` then closes the connection without reading the body.
            or (response.status_code == 200 and _same_version(previous, etag, last_modified))
        ):
            return _unchanged(out, previous, started, kind=kind, fmt=fmt, url=url)
        if response.status_code in BUSY_STATUSES:
            raise Unavailable(f"{url}: {status_problem(response)}", retry_after(response))
        if response.status_code != 200:
            raise DownloadError(f"{url}: {status_problem(response)}")

        total = _content_length(response)
        made_folder = None if out.parent.is_dir() else out.parent.resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = stack.enter_context(_temp_file(out))
        size, sha256 = _save(response, tmp, total, progress)
        if total is not None and size != total:
            raise _refused(url, out, f"fikk {size} byte, men serveren lovet {total}", BrokenOff)
        problem = _dump_problem(tmp, fmt) or _kind_problem(tmp, kind)
        if problem is not None:
            raise _refused(url, out, problem)

        # Without a date in Last-Modified the day of the download stands in, said to be a
        # guess (the key is left out otherwise: older sidecars and readers stay as they were).
        dump_date = dump_date_from(last_modified)
        meta = {
            "url": url,
            "kind": kind,
            "format": fmt,
            "etag": etag,
            "last_modified": last_modified,
            "sha256": sha256,
            "size": str(size),
            "downloaded_at": utcnow_iso(),
            "dump_date": dump_date or utcnow().date().isoformat(),
            **({} if dump_date else {"dump_date_guessed": True}),
        }
        os.replace(tmp, out)
        # The sidecar follows the file: a crash in between leaves a sidecar whose size or
        # version no longer matches the server's, so the next run simply downloads again.
        write_atomically(sidecar_path(out), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))

    return DownloadResult(
        path=out,
        kind=kind,
        fmt=fmt,
        url=url,
        skipped=False,
        bytes=size,
        etag=etag,
        last_modified=last_modified,
        dump_date=str(meta["dump_date"]),
        sha256=sha256,
        seconds=time.monotonic() - started,
        made_folder=made_folder,
        date_guessed=dump_date is None,
    )


def _kind_problem(path: Path, kind: str) -> str | None:
    """Why the dump is not of the kind asked for (underenheter at the enheter address)."""
    from varsel.dump import open_dump

    try:
        with open_dump(path) as reader:
            found = reader.info.kind.value
    except VarselError:
        return None  # what the importer cannot read, it says itself
    if found == kind:
        return None
    return f"serveren sendte {found}, ikke {kind} (er VARSEL_REGISTRY_BASE_URL riktig?)"


def dump_date_from(last_modified: str) -> str | None:
    """The YYYY-MM-DD in a Last-Modified value, Java Date.toString() or HTTP date; else None."""
    text = last_modified.strip()
    java = _JAVA_DATE.match(text)
    try:
        if java is not None:
            month = _MONTHS.get(java["month"])
            if month is None:
                return None
            # The date as the registry wrote it, in its own (Norwegian) time zone: that is
            # the day the dump was made.
            return date(int(java["year"]), month, int(java["day"])).isoformat()
        return email.utils.parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def _request_headers(kind: str, fmt: str, previous: dict[str, str] | None) -> dict[str, str]:
    headers = {
        "Accept": _JSON_ACCEPT[kind] if fmt == "json" else _CSV_ACCEPT,
        "User-Agent": f"varsel/{__version__} (python-httpx/{httpx.__version__})",
        # The dump is already gzip; asking for it as-is keeps the stored bytes equal to the
        # server's file and Content-Length meaningful for the progress bar.
        "Accept-Encoding": "identity",
    }
    if previous is not None:
        if previous.get("etag"):
            headers["If-None-Match"] = previous["etag"]
        if previous.get("last_modified"):
            # The raw text the server sent: not an HTTP date, but a server that compares
            # If-Modified-Since as text still recognises it.
            headers["If-Modified-Since"] = previous["last_modified"]
    return headers


BUSY_STATUSES = (429, 502, 503, 504)  # the registry cannot serve now: ask again later


class TryLater(DownloadError):
    """The registry could not serve, even after the retries: the same command can be run
    again later. Exit status 75 (EX_TEMPFAIL), so that cron or a timer tries again instead
    of treating it as a mistake in the command."""

    exit_status = 75


class Unavailable(TryLater):
    """The registry answered that it cannot serve now (429, 502, 503, 504)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokenOff(TryLater):
    """The body ended before the length the server promised: the connection broke off."""


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds, when given as seconds (an HTTP date is read as not given)."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


T = TypeVar("T")


def with_retries(
    url: str,
    out: Path | None,
    timeout: float,
    attempt: Callable[[], T],
    on_wait: Callable[[str], None] | None = None,
) -> T:
    """attempt(), tried again after each of RETRY_DELAYS while the registry cannot serve.

    A timeout, a failed or broken connection, a busy status (Unavailable, whose Retry-After
    is honoured up to MOST_RETRY_AFTER) or a body cut short is worth another try; any other
    failure is a one-line DownloadError, and the last try's a TryLater (exit status 75; see
    translated_errors).
    """
    for delay in (*RETRY_DELAYS, None):
        with translated_errors(url, out, timeout):
            try:
                return attempt()
            except (
                httpx.TimeoutException,
                httpx.NetworkError,
                httpx.RemoteProtocolError,
                Unavailable,
                BrokenOff,
            ) as e:
                if delay is None:
                    raise
                wait = delay
                if isinstance(e, Unavailable) and e.retry_after is not None:
                    wait = min(max(e.retry_after, delay), MOST_RETRY_AFTER)
                why = _why(url, e, timeout)
        if on_wait is not None:
            on_wait(f"{url}: {why}; prøver igjen om {wait:.0f} s")
        _sleep(wait)
    raise AssertionError("unreachable")  # the last try returns or raises


def _why(url: str, error: Exception, timeout: float) -> str:
    """Why the registry did not serve, in a few words (for the line that says it tries again)."""
    if isinstance(error, Unavailable):
        return str(error).removeprefix(f"{url}: ")
    if isinstance(error, httpx.TimeoutException):
        return f"registeret svarte ikke innen {timeout:g} s"
    if isinstance(error, httpx.ConnectError):
        return f"kunne ikke koble til ({connect_reason(error)})"
    return "forbindelsen ble brutt"


@contextlib.contextmanager
def translated_errors(url: str, out: Path | None, timeout: float) -> Iterator[None]:
    """Turn network and disk failures into one-line DownloadErrors naming the URL (and `out`,
    the file being written, if any)."""
    try:
        yield
    except httpx.TimeoutException:
        raise TryLater(f"{url}: registeret svarte ikke innen {timeout:g} s") from None
    except httpx.ConnectError as e:
        raise TryLater(f"{url}: kunne ikke koble til ({connect_reason(e)})") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
        # What with_retries tries again is, after its last try, a failure to try later.
        raise TryLater(f"{url}: nedlastingen stoppet ({_one_line(e)})") from None
    except httpx.HTTPError as e:
        raise DownloadError(f"{url}: nedlastingen stoppet ({_one_line(e)})") from None
    except httpx.InvalidURL as e:
        raise DownloadError(f"{url}: ugyldig adresse ({_one_line(e)})") from None
    except OSError as e:
        saving = f"kan ikke lagre {out}: " if out is not None else ""
        raise DownloadError(f"{url}: {saving}{os_reason(e)}") from None


def _usable_sidecar(out: Path) -> dict[str, str] | None:
    """The sidecar, if the file it describes is still there with the size it recorded."""
    meta = read_sidecar(out)
    if meta is None:
        return None
    try:
        size = out.stat().st_size
    except OSError:
        return None
    if meta.get("size") != str(size):
        return None
    return meta


def _same_version(previous: dict[str, str], etag: str, last_modified: str) -> bool:
    """Whether a 200 answer names the version we already have (both validators equal)."""
    if not etag and not last_modified:
        return False
    return previous.get("etag", "") == etag and previous.get("last_modified", "") == last_modified


def _unchanged(
    out: Path, previous: dict[str, str], started: float, *, kind: str, fmt: str, url: str
) -> DownloadResult:
    return DownloadResult(
        path=out,
        kind=kind,
        fmt=fmt,
        url=url,
        skipped=True,
        bytes=int(previous["size"]),
        etag=previous.get("etag", ""),
        last_modified=previous.get("last_modified", ""),
        dump_date=previous.get("dump_date", ""),
        sha256=previous.get("sha256", ""),
        seconds=time.monotonic() - started,
    )


def _refused(
    url: str, out: Path, problem: str, error: type[DownloadError] = DownloadError
) -> DownloadError:
    """The error for a body that arrived but is not a whole dump."""
    kept = "; forrige fil er beholdt" if out.exists() else ""
    return error(f"{url}: {problem}{kept}")


def status_problem(response: httpx.Response) -> str:
    """A short description of an unwanted HTTP status."""
    status = response.status_code
    text = f"registeret svarte HTTP {status} {response.reason_phrase}".rstrip()
    if status in (400, 406):
        # The registry answers 400 when the Accept header names a type it does not serve.
        text += f" (godtar den Accept-hodet {quoted(response.request.headers.get('Accept', ''))}?)"
    elif status == 304:
        text += " uten at vi spurte betinget"
    return text


def _content_length(response: httpx.Response) -> int | None:
    try:
        length = int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    return length if length >= 0 else None


@contextlib.contextmanager
def _temp_file(out: Path) -> Iterator[Path]:
    """A fresh file next to `out` (same file system, so os.replace is atomic); removed on exit."""
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        # After a successful os.replace the name is gone, which is fine.
        tmp.unlink(missing_ok=True)


def _save(
    response: httpx.Response, tmp: Path, total: int | None, progress: ProgressCallback | None
) -> tuple[int, str]:
    """Stream the body to `tmp`, returning its size and SHA-256."""
    digest = hashlib.sha256()
    done = 0
    if progress is not None:
        progress(0, total, 0)
    with tmp.open("wb") as f:
        # iter_raw: the bytes exactly as sent, never decoded by httpx.
        for chunk in response.iter_raw(_CHUNK):
            f.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total, 0)
        f.flush()
        # On disk before it replaces the previous dump, so a crash cannot leave a hole.
        os.fsync(f.fileno())
    return done, digest.hexdigest()


def _dump_problem(path: Path, fmt: str) -> str | None:
    """Why the file is not a complete gzipped registry dump in `fmt`, or None if it is."""
    try:
        with path.open("rb") as f:
            magic = f.read(len(_GZIP_MAGIC))
            if magic != _GZIP_MAGIC:
                f.seek(0)
                shown = f.read(40).decode("utf-8", "replace")
                return f"svaret er ikke gzip (begynner med {quoted(_one_line(shown))})"
        head = b""
        with _open_gzip(path) as g:
            # Read to the end: only then has gzip checked the CRC and the length.
            while chunk := g.read(_CHUNK):
                if len(head) < _HEAD:
                    head += chunk[: _HEAD - len(head)]
    except (EOFError, OSError, _IsalError) as e:
        # The fast read above only says that the file is damaged; where and how is said as
        # for any dump (the slower, stepwise read runs only for a damaged file).
        return gzip_problem(path) or f"ødelagt gzip ({_one_line(e)})"
    token = _FIRST_TOKEN[fmt]
    start = head.removeprefix(_BOM).lstrip()
    if not start.startswith(token):
        shown = start[:40].decode("utf-8", "replace")
        return (
            f"innholdet ser ikke ut som en {fmt.upper()}-dump fra registeret "
            f"(venter {token.decode()}, fant {_one_line(shown)!r})"
        )
    return None


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: to a temporary name beside it, then renamed."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _one_line(value: object) -> str:
    return " ".join(str(value).split()) or type(value).__name__


def connect_reason(error: BaseException) -> str:
    """Why a connection failed: the operating system's reason behind httpx's, in Bokmål."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno is not None:
            return os_reason(cause)
        cause = cause.__cause__ or cause.__context__
    return _one_line(error)
