"""A setting's value read and checked: the settings file with each key's line, conversion
from text or TOML, and the allowed ranges.

`config.Settings` declares the settings; this module reads what an operator wrote for them
and says, in one line naming where it came from, why a value cannot be used.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from varsel.errors import ConfigError, os_reason, toml_problem
from varsel.i18n import fmt_int, fmt_number
from varsel.message_fields import LONGEST_BASE_URL, base_url_length


def check_base_url(url: str, named: str) -> None:
    """The public base URL leaves room for List-Unsubscribe's link on one line (998 octets)."""
    length = base_url_length(url)
    if length > LONGEST_BASE_URL:
        raise ConfigError(
            f"{named}: adressen er {fmt_int(length)} tegn lang; avmeldingslenken i "
            f"e-postenes List-Unsubscribe-felt må stå på én linje, så den kan være på høyst "
            f"{fmt_int(LONGEST_BASE_URL)} tegn"
        )


def read_toml(path: Path, named: str) -> tuple[dict[str, Any], Callable[[str], str]]:
    """The file's settings, and how an error names one of its keys: file, line, table, key."""
    try:
        with path.open("rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"{named}: kan ikke lese innstillingsfilen: {os_reason(e)}") from None
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            f"{named}, linje {line}: er ikke UTF-8 (byte {e.start + 1}); lagre filen som UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{named}: er ikke gyldig TOML: {toml_problem(e)}") from None
    table = "varsel" if "varsel" in parsed else ""
    section = parsed.get("varsel", parsed)
    if not isinstance(section, dict):
        raise ConfigError(f"{named}: [varsel] må være en tabell")
    lines = _key_lines(data.decode("utf-8"))

    def where(key: str) -> str:
        line = lines.get((table, key))
        at = f"{named}, linje {line}" if line is not None else named
        return f"{at}: [{table}] {key}" if table else f"{at}: {key}"

    return section, where


_TABLE = re.compile(r"\s*\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, str], int]:
    """The line of each plain `key =` in a TOML text, by (table, key); tomllib gives none.

    A line inside a multi-line string is skipped; dotted keys and quoted keys are not found
    (an error about one names the file and the key without a line).
    """
    found: dict[tuple[str, str], int] = {}
    table, in_string = "", False
    for number, line in enumerate(text.splitlines(), start=1):
        starts_in_string = in_string
        if (line.count('"""') + line.count("'''")) % 2:
            in_string = not in_string
        if starts_in_string:
            continue
        if header := _TABLE.match(line):
            table = header.group(1)
        elif key := _KEY.match(line):
            found.setdefault((table, key.group(1)), number)
    return found


def help_text(metadata: Mapping[str, Any]) -> str:
    """A setting's help text, ending with its allowed range if it has one."""
    between = metadata.get("between")
    return metadata["help"] if between is None else f"{metadata['help']} Tillatt: {_span(between)}."


def named_setting(field: dataclasses.Field[Any]) -> str:
    """A setting as an operator may have set it: its environment variable and its TOML key."""
    return f"{field.metadata['env']} ({field.name})"


def shown(number: object) -> str:
    """A number as the operator wrote it: 24.0 as 24."""
    # The range and the value read as the operator wrote them.
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


def _span(between: tuple[float, float]) -> str:
    # Said in Norwegian: 0,1–3 600 (the value itself is shown as it is written, with a point).
    return f"{fmt_number(between[0])}–{fmt_number(between[1])}"


def _within(value: object, between: tuple[float, float]) -> bool:
    # Written so that NaN, which compares false with everything, is outside.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return between[0] <= value <= between[1]


def _number(value: object, kind: type) -> int | float | None:
    """The value as an int or float setting, or None when it is not one (a bool is not)."""
    if isinstance(value, bool):
        return None
    try:
        if kind is int:
            if isinstance(value, float):  # from TOML: 10.0 is 10, 2.5 is no count
                return int(value) if value.is_integer() else None
            return int(value) if isinstance(value, int | str) else None
        return float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None


def check_range(field: dataclasses.Field[Any], value: Any, origin: str) -> None:
    """A number setting's value is within its allowed range; origin names where it came from."""
    between = field.metadata.get("between")
    if between is not None and not _within(value, between):
        raise ConfigError(
            f"{origin}: {shown(value)} er utenfor det tillatte området {_span(between)}"
        )


def _quoted(value: Any) -> str:
    """A value as the operator wrote it: text in «», TOML's true and false, numbers as they are."""
    if isinstance(value, str):
        return f"«{value}»"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def convert(field: dataclasses.Field[Any], value: Any, origin: str) -> Any:
    """A value from the file or the environment as the setting's type, or a one-line error."""
    kind: type[Any] = type(field.default)
    if kind is int or kind is float:
        number = _number(value, kind)
        if number is None:
            what = "et heltall" if kind is int else "et tall"
            raise ConfigError(
                f"{origin}: {_quoted(value)} er ikke {what}; det tillatte området er "
                f"{_span(field.metadata['between'])}"
            )
        return number
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str) else ""
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{origin}: {_quoted(value)} er verken true eller false")
    if isinstance(value, str):
        return value
    # From the file: a number for a text (an organisation number) is its digits; a list, a
    # table, a date or true/false written where text belongs is a mistake.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{origin}: skal være tekst (i anførselstegn), ikke {_toml_kind(value)}")


def _toml_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true eller false"
    if isinstance(value, list):
        return "en liste"
    if isinstance(value, dict):
        return "en tabell"
    if isinstance(value, float):
        return "et desimaltall"
    return "en dato eller et klokkeslett"
