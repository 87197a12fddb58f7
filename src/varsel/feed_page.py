"""A change-feed page read and checked before anything is applied: JSON, gzipped or not.

A file that is not a page (a dump, a CSV, a zip, a search result, the roles' feed, one unit) is
told apart by its content and refused with a one-line error that says what it is; `feed`
applies the page.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from varsel.dump import Kind, gzip_problem
from varsel.errors import BadFileError, json_reason, read_user_file
from varsel.i18n import fmt_int

# A page holds at most 10,000 entries (the API's largest page); even were each a new unit's
# whole record, that is some tens of MB. A larger file is a dump or something else.
MAX_PAGE_BYTES = 128 << 20
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class FeedPage:
    """A change-feed page read and checked, not yet applied."""

    path: Path
    kind: Kind
    entries: list[Any]
    sha256: str  # of the file as given, gzipped or not
    source: str | None = None  # where it came from, when not kept as the file (an address)


def read_page(path: Path) -> FeedPage:
    """Read one change-feed page (JSON, gzipped or not); a bad file is a one-line error."""
    path = Path(path)
    raw, data, unpacked = _page_bytes(path)
    kind, entries = _feed_entries(path, data, unpacked)
    return FeedPage(path, kind, entries, hashlib.sha256(raw).hexdigest())


def page_of(path: Path, raw: bytes, source: str | None = None) -> FeedPage:
    """A page received as JSON bytes, checked as read_page checks a file; `path` names it (it
    need not exist), `source` says where it came from when it is not kept as that file."""
    kind, entries = _feed_entries(path, raw, False)
    return FeedPage(path, kind, entries, hashlib.sha256(raw).hexdigest(), source)


def _page_bytes(path: Path) -> tuple[bytes, bytes, bool]:
    """The file's bytes and its content, unpacked when gzipped (told by content, as import does)."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # read_user_file names what is wrong
    if size > MAX_PAGE_BYTES:
        raise BadFileError(_too_big(path, _head(path), unpacked=False))
    raw = read_user_file(path, BadFileError)
    if not raw.startswith(_GZIP_MAGIC):
        return raw, raw, False
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as g:
            # Reading to the end (a page is well below the limit) checks the CRC and length.
            data = g.read(MAX_PAGE_BYTES + 1)
    except (EOFError, OSError, zlib.error):
        # The dumps' diagnosis says what is wrong and at which compressed byte.
        problem = gzip_problem(raw) or "ødelagt gzip: ugyldige komprimerte data"
        raise BadFileError(f"{path}: {problem}") from None
    if len(data) > MAX_PAGE_BYTES:
        raise BadFileError(_too_big(path, data, unpacked=True))
    return raw, data, True


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(1 << 16)


def _too_big(path: Path, head: bytes, *, unpacked: bool) -> str:
    what = _what_it_is(head)
    if what:
        return f"{path}: {what}"
    size = f"over {MAX_PAGE_BYTES >> 20} MiB{' utpakket' if unpacked else ''}"
    return f"{path}: for stor til å være én side fra endringsloggen ({size})"


def _what_it_is(head: bytes) -> str | None:
    """What a file that is not a change-feed page is, told by its first bytes; None if unknown."""
    text = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if text.startswith(_GZIP_MAGIC):
        return "gzip inne i gzip; pakk ut filen én gang først"
    if text.startswith(b"PK\x03\x04"):
        return "en zip-fil (et regneark?), ikke en side fra endringsloggen"
    if text.startswith((b'"organisasjonsnummer"', b"organisasjonsnummer,")):
        return "dette er en CSV-dump, ikke en endringslogg; bruk «varsel registry import»"
    if text.startswith(b"[") and b'"organisasjonsnummer"' in text and b'"endringstype"' not in text:
        return _DUMP
    try:
        codecs.getincrementaldecoder("utf-8")().decode(text[:4096], final=False)
    except UnicodeDecodeError:
        return f"ikke tekst (begynner med {text[:8]!r}), altså ikke en side fra endringsloggen"
    return None


_DUMP = "dette er en dump, ikke en endringslogg; bruk «varsel registry import»"
_NOT_A_PAGE = "ikke en side fra endringsloggen (oppdateringer)"


def _feed_entries(path: Path, content: bytes, unpacked: bool) -> tuple[Kind, list[Any]]:
    text = content.removeprefix(codecs.BOM_UTF8)
    if not text.strip():
        raise BadFileError(f"{path}: filen er tom" + (" (utpakket)" if unpacked else ""))
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        what = _what_it_is(text)
        if what:
            raise BadFileError(f"{path}: {what}") from None
        where = f"byte {fmt_int(e.pos + len(content) - len(text))}"
        where += " (utpakket)" if unpacked else ""
        said = json_reason(e.msg)
        raise BadFileError(
            f"{path}: ugyldig JSON ved {where}" + (f": {said}" if said else "")
        ) from None
    if isinstance(data, list):
        first = data[0] if data else None
        if isinstance(first, dict) and "endringstype" not in first:
            if "specversion" in first:
                raise BadFileError(
                    f"{path}: dette er endringsloggen for roller; varsel bruker bare den for "
                    "enheter og underenheter"
                )
            if "organisasjonsnummer" in first:
                raise BadFileError(f"{path}: {_DUMP}")
            raise BadFileError(f"{path}: {_NOT_A_PAGE}: postene har ikke endringstype")
        # A bare list is a page's entries only when every one is a change: [] or [1, 2] is not.
        if not data or not all(isinstance(e, dict) and "endringstype" in e for e in data):
            what = "en tom liste" if not data else "en liste som ikke bare er endringer"
            raise BadFileError(f"{path}: {_NOT_A_PAGE}: {what}")
        kind = (
            Kind.UNDERENHETER
            if isinstance(first, dict) and "underenhet" in str(first.get("_links", ""))
            else Kind.ENHETER
        )
        return kind, data
    if not isinstance(data, dict):
        raise BadFileError(f"{path}: {_NOT_A_PAGE}")
    embedded = data.get("_embedded")
    if embedded is None and "organisasjonsnummer" in data:
        raise BadFileError(f"{path}: dette er én enhet, ikke en side fra endringsloggen")
    if not ({"_embedded", "page", "_links"} & data.keys()) or not isinstance(embedded or {}, dict):
        raise BadFileError(f"{path}: {_NOT_A_PAGE}")
    embedded = embedded or {}
    for key, kind in (
        ("oppdaterteUnderenheter", Kind.UNDERENHETER),
        ("oppdaterteEnheter", Kind.ENHETER),
    ):
        if key in embedded:
            found = embedded[key]
            if not isinstance(found, list):
                raise BadFileError(f"{path}: _embedded.{key} er ikke en liste")
            # As for a bare list: entries of which none is a change are not a page's; a page
            # with some bad entries is applied, those counted as rejected.
            if found and not any(isinstance(e, dict) and "endringstype" in e for e in found):
                raise BadFileError(
                    f"{path}: {_NOT_A_PAGE}: ingen av postene i _embedded.{key} er endringer"
                )
            return kind, list(found)
    if {"enheter", "underenheter"} & embedded.keys():
        raise BadFileError(
            f"{path}: dette er et søkeresultat, ikke en side fra endringsloggen "
            "(/api/oppdateringer/enheter eller /underenheter)"
        )
    if embedded:
        raise BadFileError(f"{path}: ukjent innhold i _embedded: {', '.join(embedded)}")
    links = data.get("_links")
    self_link = links.get("self") if isinstance(links, dict) else None
    href = str(self_link.get("href", "")) if isinstance(self_link, dict) else ""
    return (Kind.UNDERENHETER if "underenheter" in href else Kind.ENHETER), []
