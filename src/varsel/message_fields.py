"""A message's header values and links: checked, encoded and folded as RFC 5322 wants.

Every value that reaches a header comes from a campaign definition or the registry: a line
break or an encoded-word in it is refused (header injection), names become phrases or
encoded words, addresses and URLs are checked and their domains written as A-labels. The
HTML body's links are found here too, for the rule that no link is clickable by default.
"""

from __future__ import annotations

import base64
import contextlib
import html
import re
import unicodedata
from functools import lru_cache
from urllib.parse import quote, urlsplit, urlunsplit

import idna

from varsel.errors import UserError, quoted


class MessageError(UserError):
    """The message cannot be built."""


class HeaderInjectionError(MessageError):
    """A value would break out of its e-mail header field."""


# --- Links ----------------------------------------------------------------------------------

_TAG = re.compile(r"<[A-Za-z][^>]*>")
_TAG_NAME = re.compile(r"<([A-Za-z][^\s/>]*)")
_URL_ATTRIBUTE = re.compile(
    r"""[\s/](href|src|srcset|background|action|formaction|poster|data|cite|longdesc|xlink:href)"""
    r"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_STYLE_ELEMENT = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)
# Everything references looks at: style elements whole, and tags.
MARKUP = re.compile(r"<style\b[^>]*>.*?</style\s*>|<[A-Za-z][^>]*>", re.IGNORECASE | re.DOTALL)


def links_in(html_text: str) -> list[str]:
    """Every URL an HTML document links to or loads: href, src and the like, and CSS url()."""
    return [url for _, url in references(html_text)]


def references(html_text: str) -> list[tuple[str, str]]:
    """(attribute name or "css", URL) for everything the document links to or loads."""
    found: list[tuple[str, str]] = []
    # Only markup counts: escaped text (a business called "url(x)") cannot contain a tag.
    for tag in _TAG.finditer(html_text):
        name = _TAG_NAME.match(tag.group())
        # An href is a link only on <a> and <area>: <link href> loads a stylesheet, SVG's
        # <image href> an image, so theirs count as what they load ("link href").
        loads = name is not None and name.group(1).lower() not in ("a", "area")
        for match in _URL_ATTRIBUTE.finditer(tag.group()):
            attribute = match.group(1).lower()
            if attribute == "href" and loads and name is not None:
                attribute = f"{name.group(1).lower()} href"
            found.append((attribute, html.unescape(_first(match))))
        # In a style attribute the quotes around a url() are entities: &quot;...&quot;.
        found.extend(("css", _first(m)) for m in _CSS_URL.finditer(html.unescape(tag.group())))
    for style in _STYLE_ELEMENT.finditer(html_text):
        for pattern in (_CSS_IMPORT, _CSS_URL):
            found.extend(("css", _first(m)) for m in pattern.finditer(style.group(1)))
    return found


def _first(match: re.Match[str]) -> str:
    """The one alternative group of a quoted-or-bare value pattern that matched."""
    return next(g for g in match.groups()[-3:] if g is not None)


# --- Header values --------------------------------------------------------------------------

# CR and LF end a header field; NUL ends it for some software; "=?" starts an RFC 2047 encoded
# word, which a decoder would turn into any text at all, CR LF included (CVE-2024-6923).
_HEADER_BREAKERS = re.compile(r"[\r\n\x00]|=\?")
_ATEXT_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*\Z")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}\Z")
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_LINE = 78
_MAX_SUBJECT = 400


def has_breakers(value: str) -> bool:
    """Whether the value holds a line break, a NUL or the start of an encoded word."""
    return _HEADER_BREAKERS.search(value) is not None


def refuse_breakers(value: str, what: str) -> str:
    if has_breakers(value):
        raise HeaderInjectionError(
            f"{what}: linjeskift, NUL eller «=?» kan ikke stå i et e-posthode: {quoted(value[:60])}"
        )
    return value


def clean_text(value: str) -> str:
    """Registry text made safe to show: controls and invisible marks gone, whitespace single."""
    if value.isprintable() and "  " not in value and value == value.strip():
        return value
    # Line breaks and tabs become spaces (a name must stay one line); other controls, bidi
    # overrides and zero-width marks are deleted, so a name cannot hide or reorder text.
    chars = (c if c.isprintable() else " " if c.isspace() else "" for c in value)
    return " ".join("".join(chars).split())


@lru_cache(maxsize=4096)
def a_label(domain: str, what: str) -> str:
    name = domain.rstrip(".").lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise MessageError(f"{what}: ugyldig domene {quoted(domain)}") from None
    if not _HOST.match(name) or len(name) > 253:
        raise MessageError(f"{what}: ugyldig domene {quoted(domain)}")
    return name


@lru_cache(maxsize=4096)
def display_address(address: str) -> str:
    """An address as people read it: 'post@xn--brum-bakeri-98a.no' → 'post@bærum-bakeri.no'."""
    local, at, domain = address.rpartition("@")
    if "xn--" not in domain.lower():
        return address
    try:
        return f"{local}{at}{idna.decode(domain)}"
    except idna.IDNAError:
        return address  # shown as it is: still the address the message went to


def header_address(address: str, what: str) -> str:
    """An address fit for a header: no breakers, ASCII local part, A-label domain."""
    refuse_breakers(address, what)
    local, at, domain = address.strip().rpartition("@")
    if not at or not _LOCAL_PART.match(local) or len(local) > 64:
        raise MessageError(f"{what}: ugyldig e-postadresse {quoted(address)}")
    return f"{local}@{a_label(domain, what)}"


# RFC 5322 (2.1.1): a line of a message holds at most 998 octets. message.py writes the
# List-Unsubscribe field's link whole on the field's first line, `List-Unsubscribe:
# <BASE/avmelding/TOKEN>,`: a URL has no whitespace to fold at, so the public base URL must
# leave room for the rest of that line.
MAX_LINE = 998
LONGEST_TOKEN = 64  # verify.by_token's bound on a token (those made today have 24 characters)
_UNSUBSCRIBE_LINE = len("List-Unsubscribe: <") + len("/avmelding/") + LONGEST_TOKEN + len(">,")
LONGEST_BASE_URL = MAX_LINE - _UNSUBSCRIBE_LINE


def base_url_length(url: str) -> int:
    """How long the public base URL is as a message's header carries it (host as A-label,
    no trailing slash)."""
    with contextlib.suppress(MessageError):  # refused where it is used: here its length counts
        url = url_value(url, "offentlig adresse")
    return len(url.rstrip("/"))


def url_value(url: str, what: str) -> str:
    """An https URL (http only on loopback) with an A-label host and nothing that hides it."""
    refuse_breakers(url, what)
    if any(c.isspace() or not c.isprintable() or c in '"<>\\' for c in url):
        raise MessageError(f"{what}: ugyldige tegn i adressen {quoted(url)}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # "https://[x/" or a port that is not a number
        raise MessageError(f"{what}: ugyldig nettadresse {quoted(url)}") from None
    # "https://politiet.no@evil.test/" shows one host and goes to another: the phishing trick.
    if "@" in parts.netloc or not parts.hostname:
        raise MessageError(f"{what}: ugyldig nettadresse {quoted(url)}")
    host = parts.hostname if parts.hostname in _LOOPBACK else a_label(parts.hostname, what)
    if not (parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK)):
        raise MessageError(f"{what}: adressen må begynne med https:// ({quoted(url)})")
    netloc = f"[{host}]" if ":" in host else host
    netloc = netloc if port is None else f"{netloc}:{port}"
    # A path like /råd is an IRI: a header (List-Unsubscribe) is ASCII, so the letters outside
    # it are written percent-encoded as UTF-8 (RFC 3987, 3.1), which every browser reads back
    # as the same page; what is already encoded, and URI punctuation, stays as it is.
    path, query, fragment = (_ascii(part) for part in (parts.path, parts.query, parts.fragment))
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


_URI_PUNCTUATION = "%/?#[]@!$&'()*+,;=:-._~"


def _ascii(part: str) -> str:
    return part if part.isascii() else quote(part, safe=_URI_PUNCTUATION)


def names_an_address(name: str) -> bool:
    """Whether a display name holds "@", "<" or ">", in any width: it could pass for an address."""
    # Mail programs show the name where the reader looks for the sender's address, and some
    # show only the name: "Politiet <post@politiet.no>" would name a sender the message is not
    # from. NFKC makes the full-width and small forms (＠, ﹫, ＜) the ASCII marks they look like.
    return any(c in "@<>" for c in unicodedata.normalize("NFKC", name))


def phrase(name: str, what: str) -> str:
    """A display name as an RFC 5322 phrase: bare, quoted, or RFC 2047 encoded words."""
    name = clean_text(refuse_breakers(name, what))
    if not name:
        return ""
    if names_an_address(name):
        raise HeaderInjectionError(
            f"{what}: «@», «<» og «>» kan ikke stå i navnet; det kan se ut som en annen "
            f"avsenders adresse: {quoted(name[:60])}"
        )
    if _ATEXT_PHRASE.match(name):
        return name
    if name.isascii():
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _encoded_words(name, len("From: "))


def _encoded_words(text: str, used: int) -> str:
    """UTF-8 base64 encoded words of at most 75 characters, folded so lines stay under 78."""
    words: list[str] = []
    chunk = b""
    budget = (_LINE - used - len("=?utf-8?b??=")) // 4 * 3
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > budget:
            words.append(chunk.decode("utf-8"))
            chunk = b""
            budget = (_LINE - 1 - len("=?utf-8?b??=")) // 4 * 3
        chunk += encoded
    words.append(chunk.decode("utf-8"))
    # Whitespace between adjacent encoded words is dropped on decoding (RFC 2047 §6.2).
    return "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words
    )


def _fold_words(text: str, used: int) -> str:
    """ASCII text folded at spaces so lines stay under 78 where the words allow."""
    lines: list[str] = []
    line = ""
    width = _LINE - used
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line, width = word, _LINE - 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def subject_field(subject: str) -> bytes:
    if len(subject) > _MAX_SUBJECT:
        raise MessageError(f"emnet er for langt ({len(subject)} tegn; høyst {_MAX_SUBJECT})")
    used = len("Subject: ")
    # Text that looks like an encoded word is itself encoded: decoders do not decode twice.
    plain = subject.isascii() and "=?" not in subject
    value = _fold_words(subject, used) if plain else _encoded_words(subject, used)
    return f"Subject: {value}\r\n".encode("ascii")
