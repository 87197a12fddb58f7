"""DKIM signing keys and signatures (RFC 6376, Ed25519 per RFC 8463), on bytes and fast."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import idna
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from varsel.errors import Text, UserError, os_reason, quoted, visible

Algorithm = Literal["rsa", "ed25519"]

# Over-signed names (listed twice) make the signature fail if a copy of that field is added
# anywhere later: without it, a replayed genuine message could carry a second From, Subject or
# List-Unsubscribe above the signed one, and many clients show the top one. Absent fields listed
# here (Reply-To when there is none) cannot be added afterwards either.
DEFAULT_SIGNED_HEADERS: tuple[str, ...] = (
    "from", "from",
    "to", "to",
    "subject", "subject",
    "date", "date",
    "message-id", "message-id",
    "reply-to", "reply-to",
    "list-unsubscribe", "list-unsubscribe",
    "list-unsubscribe-post", "list-unsubscribe-post",
    "feedback-id",
    "mime-version",
    "content-language",
    "content-type",
)  # fmt: skip

RSA_BITS = 2048
_MIN_RSA_BITS = 1024  # RFC 8301: verifiers must not accept smaller keys
_TXT_CHUNK = 255  # a DNS character-string holds at most 255 octets
_LINE = 78  # fold DKIM-Signature lines to this length
_MAX_CACHED = 4096
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")  # RFC 5322 ftext: printable ASCII except ':'
_WSP_RUN = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_WIDE_WSP = re.compile(rb"\t[ \t]*| [ \t]+")  # runs a single space does not already stand for


class DkimKeyError(UserError):
    """The DKIM key cannot be used."""


def signing_domain(domain: str) -> str:
    """The A-label form of a signing domain; DkimKeyError if it is not a host name."""
    name = domain.strip().rstrip(".").lower()
    try:
        ascii_name = name if name.isascii() else idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise DkimKeyError(
            Text("ugyldig domene for DKIM: «%(domain)s»", domain=visible(domain))
        ) from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise DkimKeyError(Text("ugyldig domene for DKIM: «%(domain)s»", domain=visible(domain)))
    return ascii_name


def selector_name(selector: str) -> str:
    """The DNS form of a DKIM selector (lower case); DkimKeyError if it is not one."""
    name = selector.strip().lower()
    if not name or not all(_LABEL.match(label) for label in name.split(".")):
        raise DkimKeyError(
            Text(
                "ugyldig DKIM-selektor: «%(selector)s» (bruk bokstaver, tall og -)",
                selector=visible(selector),
            )
        )
    return name


def _txt_value(algorithm: Algorithm, public_key: bytes) -> str:
    return f"v=DKIM1; k={algorithm}; p={base64.b64encode(public_key).decode('ascii')}"


def _dns_record(name: str, value: str) -> str:
    chunks = " ".join(f'"{value[i : i + _TXT_CHUNK]}"' for i in range(0, len(value), _TXT_CHUNK))
    return f"{name}. IN TXT {chunks}"


PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class DkimKey:
    """A private signing key with the domain and selector it signs for."""

    domain: str  # A-label
    selector: str
    algorithm: Algorithm
    private_key: PrivateKey

    @property
    def dns_name(self) -> str:
        """Where the public key is published: 'selector._domainkey.domain'."""
        return f"{self.selector}._domainkey.{self.domain}"

    def public_key_bytes(self) -> bytes:
        """The public key as DKIM publishes it: DER SubjectPublicKeyInfo, or raw Ed25519."""
        public = self.private_key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def txt_value(self) -> str:
        """The TXT record's text, as one string: 'v=DKIM1; k=rsa; p=MIIB...'."""
        return _txt_value(self.algorithm, self.public_key_bytes())

    def dns_record(self) -> str:
        """The zone file line to publish, split into 255-octet strings."""
        return _dns_record(self.dns_name, self.txt_value())


@dataclass(frozen=True)
class KeyFiles:
    """The files generate_key wrote, and the DNS record to publish for them."""

    private_key: Path  # PEM, mode 0600
    dns_file: Path  # the zone file line, for the DNS administrator
    key: DkimKey

    def dns_record(self) -> str:
        """The zone file line to publish: 'sel._domainkey.example.no. IN TXT "v=DKIM1; ..."'."""
        return self.key.dns_record()

    def txt_value(self) -> str:
        """The TXT record's text as one string."""
        return self.key.txt_value()


def check_key_dir(directory: Path) -> None:
    """Refuse a key folder that is a file (a mistyped VARSEL_DKIM_KEY_DIR); missing is fine."""
    if directory.exists() and not directory.is_dir():
        raise DkimKeyError(
            Text("%(path)s: nøkkelmappen er en fil, ikke en mappe", path=str(directory))
        )


def generate_key(directory: Path, domain: str, selector: str, algorithm: str = "rsa") -> KeyFiles:
    """Make a new key pair, write the private key (0600) and the DNS record; never overwrite."""
    domain, selector = signing_domain(domain), selector_name(selector)
    private_key: PrivateKey
    if algorithm == "rsa":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        key = DkimKey(domain, selector, "rsa", private_key)
    elif algorithm == "ed25519":
        private_key = ed25519.Ed25519PrivateKey.generate()
        key = DkimKey(domain, selector, "ed25519", private_key)
    else:
        raise DkimKeyError(f"ukjent DKIM-algoritme: {quoted(algorithm)} (bruk rsa eller ed25519)")
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    check_key_dir(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DkimKeyError(
            Text(
                "%(path)s: nøkkelmappen kan ikke lages: %(error)s",
                path=str(directory),
                error=os_reason(e),
            )
        ) from None
    stem = f"{selector}._domainkey.{domain}"
    private_path = directory / f"{stem}.pem"
    dns_path = directory / f"{stem}.txt"
    # O_EXCL makes the refusal atomic: two operators generating at once cannot both win, and an
    # existing key, which DNS may already publish, is never replaced by accident.
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DkimKeyError(
            Text("%(path)s: nøkkelen finnes allerede; velg en ny selektor", path=str(private_path))
        ) from None
    except OSError as e:
        raise DkimKeyError(
            Text(
                "%(path)s: kan ikke skrive nøkkelen: %(error)s",
                path=str(private_path),
                error=os_reason(e),
            )
        ) from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # the mode given to open() is reduced by umask, never raised
        f.write(pem)
    dns_path.write_text(key.dns_record() + "\n", encoding="ascii")
    return KeyFiles(private_path, dns_path, key)


def load_key(path: Path, domain: str, selector: str) -> DkimKey:
    """Read a PEM private key (RSA or Ed25519) for signing as domain and selector."""
    domain, selector = signing_domain(domain), selector_name(selector)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DkimKeyError(
            Text(
                "%(path)s: kan ikke lese DKIM-nøkkelen: %(error)s",
                path=str(path),
                error=os_reason(e),
            )
        ) from None
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise DkimKeyError(
            Text("%(path)s: DKIM-nøkkelen er kryptert med passord", path=str(path))
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise DkimKeyError(
            Text("%(path)s: ikke en privat nøkkel i PEM-format", path=str(path))
        ) from None
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < _MIN_RSA_BITS:
            raise DkimKeyError(
                Text(
                    "%(path)s: RSA-nøkkelen har %(bits)s bit; DKIM krever minst 1024",
                    path=str(path),
                    bits=private_key.key_size,
                )
            )
        return DkimKey(domain, selector, "rsa", private_key)
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return DkimKey(domain, selector, "ed25519", private_key)
    raise DkimKeyError(Text("%(path)s: DKIM-nøkkelen må være RSA eller Ed25519", path=str(path)))


def canonical_header(field: bytes) -> bytes:
    """RFC 6376 §3.4.2 relaxed canonical form of one raw header field (with its folds)."""
    name, _, value = field.partition(b":")
    # The tests before each step skip it for the usual field: one line, single spaces.
    if b"\r\n" in value:
        value = value.replace(b"\r\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return name.rstrip(b" \t").lower() + b":" + value.strip(b" \t") + b"\r\n"


def canonical_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4 relaxed canonical form of a body with CRLF line endings."""
    # Substring tests are much faster than a regex pass, and bodies varsel builds (quoted-
    # printable) have no tabs, no trailing spaces and few double spaces.
    if b" \r\n" in body or b"\t\r\n" in body:
        body = _TRAILING_WSP.sub(b"\r\n", body)
    if b"\t" in body or b"  " in body:
        body = _WIDE_WSP.sub(b" ", body)
    body = body.rstrip(b" \t") if body.endswith((b" ", b"\t")) else body
    # Empty lines at the end are ignored; a non-empty body ends with exactly one CRLF; an empty
    # body stays empty (unlike "simple", which makes it one CRLF).
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    return body[:end] + b"\r\n" if end else b""


def split_message(message: bytes) -> tuple[list[bytes], bytes]:
    """The raw header fields (folds kept, CRLF removed from each end) and the body."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        head, body = message.removesuffix(b"\r\n"), b""
    else:
        head, body = message[:end], message[end + 4 :]
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields, body


class Signer:
    """Adds one DKIM-Signature per key to messages: RSA first, then Ed25519 (RFC 8463)."""

    def __init__(
        self, keys: Sequence[DkimKey], headers: Sequence[str] = DEFAULT_SIGNED_HEADERS
    ) -> None:
        if not keys:
            raise DkimKeyError("ingen DKIM-nøkkel å signere med")
        names = [h.strip().lower() for h in headers]
        if "from" not in names:
            raise DkimKeyError("DKIM-signaturen må dekke From (RFC 6376 §5.4)")
        if not all(_FIELD_NAME.match(n) for n in names):
            raise DkimKeyError(f"ugyldig feltnavn i DKIM-feltlisten: {quoted(str(headers))}")
        # sorted() is stable: keys of one algorithm keep the order they were given in.
        self.keys = tuple(sorted(keys, key=lambda k: k.algorithm != "rsa"))
        self.headers = tuple(names)
        self._names = tuple(n.encode("ascii") for n in names)
        self._wanted = frozenset(self._names)
        # Most fields (From, Subject, Feedback-ID, ...) are the same in every message of a
        # campaign: their canonical forms are kept, keyed by the raw field.
        self._canonical: dict[bytes, tuple[bytes, bytes]] = {}
        # The h= names once each, in order: what a message with one instance of each takes.
        self._once = tuple(dict.fromkeys(self._names))
        self._prefixes = []
        for key in self.keys:
            prefix = (
                f"DKIM-Signature: v=1; a={key.algorithm}-sha256; c=relaxed/relaxed;\r\n"
                f"\td={key.domain}; s={key.selector};\r\n"
                f"\th={_fold_list(names)};\r\n"
            ).encode("ascii")
            # The canonical form of the signature field up to t=: the same for every message.
            canonical = canonical_header(prefix[:-2])[:-2]
            self._prefixes.append((_signing(key.private_key), prefix, canonical))

    def sign(
        self, message: bytes, *, timestamp: int | None = None, body_is_relaxed: bool = False
    ) -> bytes:
        """The message with a DKIM-Signature field per key prepended; CRLF line endings."""
        return self.sign_many([message], timestamp=timestamp, body_is_relaxed=body_is_relaxed)[0]

    def sign_many(
        self,
        messages: Sequence[bytes],
        *,
        timestamp: int | None = None,
        body_is_relaxed: bool = False,
    ) -> list[bytes]:
        """sign() for each message; the private-key operations run one after another."""
        # body_is_relaxed is the caller's promise that the body is already in relaxed canonical
        # form (no tabs, no runs of spaces, no trailing spaces, one final CRLF), as MessageFactory
        # builds it. Skipping the check saves more than everything else here but the RSA step.
        t = int(time.time()) if timestamp is None else timestamp
        prepared = [self._prepare(m, t, body_is_relaxed) for m in messages]
        # The RSA operations in a row, not each between two messages' Python work: interleaved,
        # each evicts the other's caches, and a signed message cost ~15 % more CPU in all.
        signatures = [[sign(data) for sign, data in jobs] for _, _, jobs in prepared]
        out = []
        for (message, headers, _), signed in zip(prepared, signatures, strict=True):
            parts: list[bytes] = []
            for header, signature in zip(headers, signed, strict=True):
                parts += (header, _fold_b64(signature), b"\r\n")
            parts.append(message)
            out.append(b"".join(parts))
        return out

    def _prepare(
        self, message: bytes, t: int, body_is_relaxed: bool
    ) -> tuple[bytes, list[bytes], list[tuple[Callable[[bytes], bytes], bytes]]]:
        """The message (CRLF), each signature field up to b=, and what each key signs."""
        if b"\r\n" not in message:
            message = message.replace(b"\n", b"\r\n")
        fields, body = split_message(message)
        if not body_is_relaxed:
            body = canonical_body(body)
        body_hash = base64.b64encode(hashlib.sha256(body).digest())
        signed = self._signed_fields(fields)
        headers, jobs = [], []
        for sign, prefix, canonical in self._prefixes:
            headers.append(b"%b\tt=%d; bh=%b;\r\n\tb=" % (prefix, t, body_hash))
            # §3.7: the signature field itself is hashed last, with an empty b= and no final
            # CRLF; relaxed, its folds ("\r\n\t") become single spaces.
            jobs.append((sign, b"%b%b t=%d; bh=%b; b=" % (signed, canonical, t, body_hash)))
        return message, headers, jobs

    def _signed_fields(self, fields: list[bytes]) -> bytes:
        """The canonical header fields named in h=, in h= order (RFC 6376 §5.4.2)."""
        # Each name takes the last unused instance of its field, from the bottom up; a name with
        # none left (over-signing, or an absent field) adds nothing.
        cache = self._canonical
        instances: dict[bytes, list[bytes]] = {}
        once: dict[bytes, bytes] = {}
        for field in fields:
            entry = cache.get(field)
            if entry is None:
                colon = field.find(b":")
                if colon < 0:
                    continue  # not a header field; no verifier can select it either
                name = field[:colon].rstrip(b" \t").lower()
                entry = (name, canonical_header(field) if name in self._wanted else b"")
                if len(cache) >= _MAX_CACHED:
                    cache.clear()  # To, Message-ID and the like never come back
                cache[field] = entry
            name, canonical = entry
            if canonical:
                if name in once:
                    instances.setdefault(name, [once[name]]).append(canonical)
                else:
                    once[name] = canonical
        if not instances:
            # One instance of each (the usual message): the first h= entry of a name takes it.
            return b"".join([once[name] for name in self._once if name in once])
        for name, canonical in once.items():
            instances.setdefault(name, [canonical])
        parts = []
        for name in self._names:
            found = instances.get(name)
            if found:
                parts.append(found.pop())
        return b"".join(parts)


_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _signing(private_key: PrivateKey) -> Callable[[bytes], bytes]:
    """The function that signs data with this key, as DKIM asks for its algorithm."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return functools.partial(private_key.sign, padding=_PKCS1V15, algorithm=_SHA256)
    ed = private_key
    # RFC 8463 §3: Ed25519 signs the SHA-256 hash of the data, not the data itself.
    return lambda data: ed.sign(hashlib.sha256(data).digest())


def _fold_list(names: Sequence[str]) -> str:
    """'from:from:to:...' folded after colons so no line passes _LINE (FWS is allowed there)."""
    lines = []
    line = "\th="
    for i, name in enumerate(names):
        piece = name if i == len(names) - 1 else name + ":"
        if len(line) + len(piece) > _LINE - 1 and line.strip() != "h=":
            lines.append(line)
            line = "\t "
        line += piece
    lines.append(line)
    return "\r\n".join(lines).removeprefix("\th=")


def _fold_b64(signature: bytes) -> bytes:
    """The base64 signature in lines of at most 72 characters after a tab; FWS is ignored in b=."""
    text = base64.b64encode(signature)
    return b"\r\n\t".join(text[i : i + 72] for i in range(0, len(text), 72))
