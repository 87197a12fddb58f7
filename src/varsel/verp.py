"""VERP envelope senders that name one delivery, protected by an HMAC.

Every message goes out with `MAIL FROM:<bounces+<delivery id>-<mac>@<sender domain>>`. A bounce
comes back to that address, so it names the delivery it is about even when the report itself
is unreadable. The mac (the first 80 bits of HMAC-SHA256 over the delivery id, in hex) stops
anyone from forging a bounce that would mark another recipient's delivery as bounced. Hex
digits only: the local part stays within what every MTA accepts, a relay that changes its case
(some lower-case whole addresses) does no harm, and it costs a tenth of base32 to write.

The domain is the sender's own (the From domain) or a subdomain of it: either way the envelope
domain's organisational domain is the From domain's, so SPF keeps DMARC alignment.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from varsel.config import Settings
from varsel.dkim import signing_domain
from varsel.errors import ConfigError, os_reason, quoted
from varsel.keys import key_dir

PREFIX = "bounces"
MAC_BYTES = 10  # 80 bits: forging one takes 2**80 tries, each a bounce sent to us
_MAC_CHARS = 2 * MAC_BYTES  # in hex
_CONTEXT = b"varsel-verp-v1:"  # so the same secret used elsewhere never yields these macs
_ADDRESS = re.compile(
    rf"{PREFIX}\+([0-9]{{1,18}})-([0-9a-f]{{{_MAC_CHARS}}})@([a-z0-9.-]+)", re.IGNORECASE
)
_SUBDOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class VerpError(ConfigError):
    """The VERP secret cannot be read or made."""


def secret_path(settings: Settings) -> Path:
    """Where the VERP secret is kept when it is not given in the environment."""
    if settings.verp_secret_file:
        return Path(settings.verp_secret_file).expanduser()
    return key_dir(settings) / "verp.secret"


def load_secret(settings: Settings) -> bytes:
    """The key that signs envelope senders: from the setting, else the file (made if missing)."""
    if settings.verp_secret:
        text = settings.verp_secret
    else:
        path = secret_path(settings)
        try:
            text = path.read_text("ascii")
        except FileNotFoundError:
            text = _make_secret(path)
        except (OSError, UnicodeDecodeError) as e:
            why = os_reason(e) if isinstance(e, OSError) else "ikke ASCII-tekst"
            raise VerpError(f"{path}: kan ikke lese VERP-nøkkelen: {why}") from None
    text = text.strip()
    if len(text) < 16:
        raise VerpError("VERP-nøkkelen er for kort: minst 16 tegn (varsel lager 64 tilfeldige)")
    return hashlib.sha256(_CONTEXT + text.encode("utf-8")).digest()


def _make_secret(path: Path) -> str:
    """Write a new random secret (0600), or read the one another process just wrote."""
    text = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text("ascii")  # a concurrent first use won the race: share its secret
    except OSError as e:
        raise VerpError(f"{path}: kan ikke lage VERP-nøkkelen: {os_reason(e)}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(f.fileno(), 0o600)  # the mode given to open() is reduced by umask, never raised
        f.write(text + "\n")
    return text


def envelope_domain(sender_domain: str, subdomain: str = "") -> str:
    """The envelope sender's domain (A-label): the sender's domain, or a subdomain of it."""
    domain = signing_domain(sender_domain)
    label = subdomain.strip().lower().strip(".")
    if label and not _SUBDOMAIN.fullmatch(label):
        raise ConfigError(f"bounce_subdomain: ugyldig domenenavn {quoted(subdomain)}")
    return f"{label}.{domain}" if label else domain


def aligned(from_domain: str, envelope: str) -> bool:
    """Whether an envelope domain keeps relaxed DMARC alignment with the From domain."""
    a, b = from_domain.lower().rstrip("."), envelope.lower().rstrip(".")
    # The same domain or a subdomain of it share the organisational domain, whatever the
    # public suffix list says; this is all varsel ever makes, so no list is needed to check it.
    return b == a or b.endswith("." + a)


class Verp:
    """Makes and checks the envelope senders of one sender domain (or any, when checking)."""

    def __init__(self, secret: bytes, domain: str = "") -> None:
        self.domain = domain
        self._secret = secret
        # HMAC keyed once; copy() per address saves hashing the key each time (~1 µs per call).
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)

    def __reduce__(self) -> tuple[type[Verp], tuple[bytes, str]]:
        # Sent to the build workers, which make the envelope senders with the messages.
        return (Verp, (self._secret, self.domain))

    @classmethod
    def from_settings(cls, settings: Settings, sender_domain: str = "") -> Verp:
        """The signer for a campaign's sender domain (empty: for parsing only)."""
        domain = envelope_domain(sender_domain, settings.bounce_subdomain) if sender_domain else ""
        return cls(load_secret(settings), domain)

    def mac(self, delivery_id: int) -> str:
        """The truncated HMAC of a delivery id, in lower-case hex."""
        h = self._mac.copy()
        h.update(b"%d" % delivery_id)
        return h.digest()[:MAC_BYTES].hex()

    def address(self, delivery_id: int) -> str:
        """The envelope sender of one delivery."""
        return f"{PREFIX}+{delivery_id}-{self.mac(delivery_id)}@{self.domain}"

    def delivery_id(self, address: str) -> int | None:
        """The delivery an envelope address names, only if its mac checks."""
        found = _ADDRESS.fullmatch(address.strip().strip("<>"))
        return self._checked(found) if found else None

    def find(self, text: str) -> int | None:
        """The first delivery named by a genuine VERP address anywhere in the text."""
        for found in _ADDRESS.finditer(text):
            delivery_id = self._checked(found)
            if delivery_id is not None:
                return delivery_id
        return None

    def _checked(self, found: re.Match[str]) -> int | None:
        delivery_id = int(found.group(1))
        given = found.group(2).lower()
        return delivery_id if hmac.compare_digest(self.mac(delivery_id), given) else None
