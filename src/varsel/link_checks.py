"""URLs in a message: where they are written, and what they are.

A URL with a scheme, one from www., or a shortener's host without a scheme; its host as an
A-label; whether it is a shortener, a redirect to another address, carries tracking
parameters, or lies under one of the campaign's allowed domains. The linter turns these into
its findings.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

import idna

SHORTENERS = frozenset((
    "bit.ly", "bitly.com", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "v.gd", "buff.ly",
    "rebrand.ly", "cutt.ly", "shorturl.at", "shorturl.com", "tiny.cc", "tiny.one", "t.ly", "rb.gy",
    "s.id", "bl.ink", "lnkd.in", "dlvr.it", "trib.al", "soo.gd", "qrco.de", "short.io", "x.gd",
))  # fmt: skip
# Hosts whose whole purpose is to send the reader on to another address.
REDIRECT_HOSTS = frozenset(
    {"l.facebook.com", "lm.facebook.com", "l.instagram.com", "l.messenger.com", "out.reddit.com"}
)
_REDIRECT_HOST_PARTS = ("urldefense", "safelinks.protection.outlook.com", "linkprotect.cudasvc")
_REDIRECT_KEYS = frozenset(
    {"url", "redirect", "redirect_url", "redirect_uri", "redir", "goto", "dest", "destination"}
)
_REDIRECT_SEGMENTS = frozenset({"redirect", "redir", "goto"})
_TRACKING_KEYS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "mkt_tok"}
)
_TRACKING_PREFIXES = ("utm_", "_hs")

_SHORTENER_PATTERN = "|".join(re.escape(h) for h in sorted(SHORTENERS, key=len, reverse=True))
# A URL with a scheme, one starting with www., or a shortener's host written without a scheme.
# The look-behind keeps "www." inside "https://www." and "t.co" inside "nett.com" from counting.
_URL = re.compile(
    rf"(?<![\w.@/-])(?:https?://|www\.|(?:{_SHORTENER_PATTERN})/)[^\s<>\"'`]*", re.IGNORECASE
)
_TRAILING = ".,;:!?)]}»”’'"


def urls_in_text(text: str) -> list[str]:
    """Every URL written in a text: with a scheme, from www., or a shortener without a scheme."""
    return [m.group().rstrip(_TRAILING) for m in _URL.finditer(text)]


def split_url(url: str) -> tuple[str, str, str, str]:
    """(scheme, host as an A-label, path, query); a URL without a scheme reads as https."""
    full = url if "://" in url[:10] else f"https://{url}"
    try:
        parts = urlsplit(full)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return "", "", "", ""
    if host and not host.isascii():
        # A name idna refuses is compared as written: it matches no allowed domain either.
        with contextlib.suppress(idna.IDNAError):
            host = idna.encode(host, uts46=True).decode("ascii")
    return parts.scheme.lower(), host.lower(), parts.path, parts.query


def under(host: str, domains: Iterable[str]) -> bool:
    """Whether the host is one of the domains or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)


def under_base(url: str, base: str) -> bool:
    """Whether a URL lies at or below a base URL: the same host and port, then the base's path."""
    try:
        target, root = urlsplit(url), urlsplit(base)
        ports = (target.port, root.port)
    except ValueError:
        return False
    _, host, path, _ = split_url(url)
    _, base_host, base_path, _ = split_url(base)
    defaults = {"http": 80, "https": 443}
    if (ports[0] or defaults.get(target.scheme.lower())) != (
        ports[1] or defaults.get(root.scheme.lower())
    ):
        return False
    prefix = base_path.rstrip("/")
    # Whole segments: /varsel-gammel is not under /varsel.
    return bool(host) and host == base_host and (path == prefix or path.startswith(prefix + "/"))


def is_redirect(host: str, path: str, query: str) -> bool:
    """Whether the URL sends the reader on to another address than its own."""
    if host in REDIRECT_HOSTS or any(p in host for p in _REDIRECT_HOST_PARTS):
        return True
    if host.endswith(("google.com", "google.no")) and path == "/url":
        return True
    segments = {s.lower() for s in path.split("/")}
    if segments & _REDIRECT_SEGMENTS:
        return True
    # A second address inside the first, in the path or the query, is where the reader ends up.
    lowered = unquote(path).lower()
    if "http:" in lowered or "https:" in lowered:
        return True
    for key, value in parse_qsl(query, keep_blank_values=True):
        target = value.strip().lower()
        if key.lower() in _REDIRECT_KEYS or target.startswith(("http:", "https:", "//", "www.")):
            return True
    return False


def is_tracking(query: str) -> bool:
    """Whether the query carries tracking parameters (utm_, fbclid, gclid and the like)."""
    return any(
        key.lower() in _TRACKING_KEYS or key.lower().startswith(_TRACKING_PREFIXES)
        for key, _ in parse_qsl(query, keep_blank_values=True)
    )
