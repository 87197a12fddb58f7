"""The VarselError tree: user errors carry a one-line message and exit status 2."""

from __future__ import annotations

import errno
import re
import socket
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def N_(msgid: str) -> str:  # the name the message catalogs' extraction looks for
    """Mark a message id (Bokmål) where it is defined; it is translated where it is shown."""
    return msgid


class Text(str):
    """A message in Bokmål (as the CLI prints it) that keeps its message id and values.

    The value is `msgid % params`; the console looks `msgid` up in its catalogs and fills in
    the same values, so that a Nynorsk or English page shows the message in its language.
    A value that is itself a Text is translated too.
    """

    msgid: str
    params: Mapping[str, Any]

    def __new__(cls, msgid: str, /, **params: Any) -> Text:
        # Always %-formatted, as gettext's newstyle messages are: a literal % is written %%.
        text = super().__new__(cls, msgid % params)
        text.msgid = msgid
        text.params = params
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # str's own pickling would make Text(<the Bokmål text>), formatting it a second time.
        return (_text, (self.msgid, dict(self.params)))


def _text(msgid: str, params: dict[str, Any]) -> Text:
    return Text(msgid, **params)


def visible(text: str) -> str:
    """Text for one line of a message: line breaks, other controls and format characters (a
    bidi override) as escapes (\\n, \\x00, \\u202e), so that a value shows what it holds."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _ESCAPES.get(c) or _escape(c) for c in text)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def quoted(text: str) -> str:
    """A value in a Bokmål message: «text», with what cannot be seen as escapes (visible())."""
    return f"«{visible(text)}»"


def listed(items: Sequence[str]) -> Text:
    """Items joined with commas, each translated where the list is shown (when it is a Text)."""
    names = [f"i{n}" for n in range(len(items))]
    # No catalog has this id: gettext gives it back as it is, and the items are translated.
    msgid = ", ".join(f"%({name})s" for name in names)
    return Text(msgid, **dict(zip(names, items, strict=True)))


class VarselError(Exception):
    """Something went wrong in varsel."""

    exit_status = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())

    @property
    def message(self) -> str:
        """The one-line message; a Text as it was given, so that it can be translated."""
        message = self.args[0]
        return message if isinstance(message, str) else str(message)


class UserError(VarselError):
    """The input given to varsel is not usable."""

    exit_status = 2


class BadFileError(UserError):
    """The file is not a registry dump varsel can read."""


class BadCriteriaError(UserError):
    """The selection criteria are not valid."""


class ConfigError(UserError):
    """The settings are not valid."""


class CampaignError(UserError):
    """The campaign definition or the requested action is not valid."""


class StoreError(UserError):
    """The store cannot be opened or is not a varsel store."""


class StoreLost(VarselError):
    """The store failed under a running command: the server went away, the disk filled up.

    Not the user's mistake, and not varsel's: what was committed stands, and the command can
    be run again once the store answers. Exit status 75 (EX_TEMPFAIL), as for an Altinn run
    cut short: a service manager or cron tries again later.
    """

    exit_status = 75


class Interrupted(VarselError):
    """Ctrl-C stopped the command; the message says what it did and how to go on."""

    # Ctrl-C: as a shell reports a command that SIGINT ended (128 + 2).
    exit_status = 130


class DownloadError(UserError):
    """The registry dump could not be downloaded."""


# The operating system's commonest complaints, said in Bokmål; any other keeps its own text.
_OS_REASONS = {
    errno.ENOENT: N_("finnes ikke"),
    errno.EACCES: N_("ingen tilgang"),
    errno.ENOSPC: N_("disken er full"),
    errno.EROFS: N_("skrivebeskyttet filsystem"),
    errno.EISDIR: N_("er en mappe"),
    errno.ENOTDIR: N_("en del av stien er ikke en mappe"),
    errno.EPERM: N_("ikke tillatt"),
    errno.ECONNREFUSED: N_("tilkoblingen ble avvist"),
    errno.ECONNRESET: N_("tilbakestilt av motparten"),
    errno.ETIMEDOUT: N_("tidsavbrudd"),
    errno.EHOSTUNREACH: N_("verten kan ikke nås"),
    errno.ENETUNREACH: N_("nettverket kan ikke nås"),
    errno.EADDRINUSE: N_("adressen er i bruk"),
}


def os_reason(e: OSError) -> str:
    """Why an operating-system call failed, in Bokmål for the common cases: a Text, which the
    console shows in its page's language (within a message that is a Text too)."""
    if isinstance(e, socket.gaierror):  # its errno is the resolver's, not errno's
        if e.errno == socket.EAI_NONAME:
            return Text(N_("finner ikke vertsnavnet"))
        return str(e.strerror or e)
    if e.errno in _OS_REASONS:
        return Text(_OS_REASONS[e.errno])
    return e.strerror or str(e)


# The JSON parser's (orjson's) reasons, in Bokmål: each part of its message, split at ", ".
_JSON_REASONS = {
    "unexpected character": "uventet tegn",
    "expected a string key": "ventet en nøkkel i anførselstegn",
    "unexpected end of data": "teksten slutter for tidlig",
    "unexpected content after document": "mer tekst etter slutten",
    "unexpected control character in string": "kontrolltegn i en tekst",
    "invalid escaped sequence in string": "ugyldig \\-sekvens i en tekst",
    "invalid utf-8 encoding in string": "ugyldig UTF-8 i en tekst",
    "str is not valid UTF-8: surrogates not allowed": "ugyldig UTF-8",
    "invalid literal": "ugyldig verdi",
    "number is infinity when parsed as double": "tallet er for stort",
    "no digit after minus sign": "mangler sifre etter minustegnet",
    "no digit after decimal point": "mangler sifre etter desimalpunktet",
    "no digit after exponent sign": "mangler sifre i eksponenten",
    "recursion limit exceeded": "for mange nivåer inni hverandre",
    "Input is a zero-length, empty document": "tom tekst",
}
_JSON_EXPECTED = re.compile(r"expected ((?:'[^']*'(?: or )?)+)( after key)?")


def json_reason(msg: str) -> str:
    """The JSON parser's reason for refusing a text, in Bokmål; "" when it says nothing we know
    (the message then names the byte alone, rather than half of it in English)."""
    if msg in _JSON_REASONS:
        return _JSON_REASONS[msg]
    parts = []
    for part in msg.split(", "):
        if part in _JSON_REASONS:
            parts.append(_JSON_REASONS[part])
        elif expected := _JSON_EXPECTED.fullmatch(part):
            tokens = re.findall(r"'([^']*)'", expected.group(1))
            words = " eller ".join(f"«{t}»" for t in tokens)
            parts.append(f"ventet {words}" + (" etter nøkkelen" if expected.group(2) else ""))
        else:
            return ""
    return ", ".join(parts)


def redact_url(url: str) -> str:
    """A URL fit for a message or a listing: its password, if any, replaced by ***."""
    # Greedy to the last "@": a password with a raw "@" or "/" is still hidden whole.
    return re.sub(r"//([^:/@]*):.*@", r"//\1:***@", url, count=1)


def read_user_file(path: Path, error: type[UserError]) -> bytes:
    """A file someone gave varsel; missing or unreadable, a one-line error of the given kind."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: filen finnes ikke") from None
    except OSError as e:
        raise error(f"{path}: kan ikke leses ({os_reason(e)})") from None


def read_user_text(
    path: Path, error: type[UserError], encoding: str = "utf-8", how: str = ""
) -> str:
    """read_user_file() as text; not UTF-8 is a one-line error too, saying where and what to do.

    `how` tells how to save the file as UTF-8 from the program the user likely made it in.
    """
    data = read_user_file(path, error)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise error(
            f"{path}, linje {line}: er ikke UTF-8 (byte {e.start + 1}); lagre filen som UTF-8"
            + (f" ({how})" if how else "")
        ) from None


# tomllib's reasons in Bokmål; one not here is said as a syntax error, with its place.
_TOML_REASONS = {
    "Invalid value": "ugyldig verdi",
    "Unclosed array": "en liste ([) er ikke lukket",
    "Unclosed inline table": "en tabell ({) er ikke lukket",
    "Cannot overwrite a value": "samme nøkkel står to ganger",
    "Expected '=' after a key in a key/value pair": "mangler = etter nøkkelen",
    "Invalid statement": "ugyldig linje",
    "Unterminated string": "tekst uten avsluttende anførselstegn",
    "Illegal character in string": "ugyldig tegn i tekst",
    "Expected newline or end of document after a statement": "mer enn én verdi på linjen",
    "Invalid initial character for a key part": "ugyldig tegn først i en nøkkel",
}
_TOML_WHERE = re.compile(r"^(.*?)\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")


def toml_problem(error: tomllib.TOMLDecodeError) -> str:
    """tomllib's message in Bokmål: what is wrong, and on which line and column."""
    found = _TOML_WHERE.match(str(error))
    reason = found.group(1) if found else str(error)
    if reason == r"Illegal character '\n'":
        # The line ended inside a string: the commonest mistake, a closing quote left out.
        text = "tekst uten avsluttende anførselstegn"
    elif reason.startswith("Illegal character"):
        text = "ugyldig tegn i tekst"
    elif reason.startswith("Cannot declare"):
        text = "samme tabell står to ganger"
    else:
        text = _TOML_REASONS.get(reason, "feil syntaks")
    if found and found.group(2):
        return f"{text} (linje {found.group(2)}, kolonne {found.group(3)})"
    return f"{text} (på slutten av filen)" if found else text
