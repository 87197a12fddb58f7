"""The SMTP relay's configuration: where it is, and how to secure the session and log in."""

from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from varsel.errors import UserError, quoted, redact_url

SECURITY_MODES = ("none", "starttls", "tls")
_SCHEMES = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}
_SCHEME_OF = {security: scheme for scheme, (security, _) in _SCHEMES.items()}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Bytes that would let an address end the command line or the path early.
BAD_ADDRESS = re.compile(r"[\x00-\x20<>\x7f]")


@dataclass(frozen=True)
class RelayConfig:
    """Where and how to reach the SMTP relay that takes varsel's messages."""

    host: str
    port: int
    security: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    helo_name: str = "localhost"
    timeout: float = 60.0  # for each reply; for a small message, its whole transaction
    verify_tls: bool = True
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise UserError(f"ukjent sikkerhet for SMTP: {quoted(self.security)}")
        if not 0 < self.port < 65536:
            raise UserError(f"ugyldig portnummer for SMTP: {self.port}")
        if not self.timeout > 0:
            raise UserError(f"tidsgrensen for SMTP må være over null: {self.timeout}")
        if (self.username is None) != (self.password is None):
            raise UserError("SMTP-pålogging trenger både brukernavn og passord")
        if not self.helo_name.isascii() or not self.helo_name or BAD_ADDRESS.search(self.helo_name):
            raise UserError(f"ugyldig HELO-navn for SMTP: {quoted(self.helo_name)}")

    @classmethod
    def from_url(cls, url: str) -> RelayConfig:
        """Parse smtp://, smtp+starttls:// or smtps:// [user:password@]host[:port][?options]."""
        shown = redact_url(url.strip())

        def bad(why: str) -> UserError:
            return UserError(f"ugyldig SMTP-adresse {shown}: {why}")

        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise bad("vertsnavn eller port kan ikke tolkes") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise bad("må begynne med smtp://, smtp+starttls:// eller smtps://")
        if not parts.hostname:
            raise bad("mangler vertsnavn")
        if parts.path not in ("", "/") or parts.fragment:
            raise bad("skal ikke ha sti eller #-del")
        security, default_port = _SCHEMES[scheme]
        verify_tls, ca_file, helo_name, timeout = True, None, "localhost", 60.0
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "verify" and value.lower() in _TRUE | _FALSE:
                verify_tls = value.lower() in _TRUE
            elif key == "ca" and value:
                ca_file = value
            elif key == "helo" and value:
                helo_name = value
            elif key == "timeout":
                try:
                    timeout = float(value)
                except ValueError:
                    raise bad(f"timeout={value} er ikke et tall") from None
            else:
                raise bad(f"ukjent eller ugyldig valg {key}={value}")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if (username is None) != (password is None):
            raise bad("pålogging trenger både brukernavn og passord (bruker:passord@)")
        try:
            return cls(
                host=parts.hostname,
                port=default_port if port is None else port,
                security=security,
                username=username,
                password=password,
                helo_name=helo_name,
                timeout=timeout,
                verify_tls=verify_tls,
                ca_file=ca_file,
            )
        except UserError as e:
            raise bad(e.message) from None

    def redacted(self) -> str:
        """The relay as a URL without the password, for logs and messages."""
        user = f"{self.username}:***@" if self.username is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{_SCHEME_OF[self.security]}://{user}{host}:{self.port}"

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings for this relay: verified against the system or the given CA."""
        # Made once per config: loading the system's CA store costs milliseconds per connection.
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
