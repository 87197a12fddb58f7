"""A campaign's definition: the TOML file an operator writes, read and checked.

Every value is checked where it is read, and a mistake is one line naming the file, the table
and the key: addresses, HTTPS URLs, the document (a URL, optionally a file to send), the
templates of each language (the defaults where a language has none) and the sending limits
(the send window's times and zone are checked by send_window).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from varsel import contacts
from varsel.config import Settings
from varsel.errors import (
    N_,
    BadCriteriaError,
    CampaignError,
    Text,
    listed,
    quoted,
    read_user_text,
    toml_problem,
    visible,
)
from varsel.message_fields import LONGEST_BASE_URL, base_url_length, has_breakers, names_an_address
from varsel.segment_criteria import CRITERIA_KEYS, Criteria, resolve
from varsel.send_window import WINDOW_DAYS, check_window

LANGUAGES = ("nb", "nn", "en")
NUL_IN_TEXT = N_("%(where)s: «%(key)s» har et NUL-tegn (\\u0000); skriv teksten uten det")


@dataclass(frozen=True)
class Template:
    """The subject, plain-text and HTML templates of one language."""

    subject: str
    text: str
    html: str
    letter: str = ""  # the printed letter's text (letter_render); "" in campaigns made before


@dataclass(frozen=True)
class Limits:
    """How fast and when a campaign may be sent."""

    rate_per_second: float = 50.0
    connections: int = 4
    per_domain_concurrency: int = 2
    per_domain_per_minute: int = 600
    retry_hours: float = 48.0
    window_days: tuple[str, ...] = ()  # mon..sun; empty: every day
    window_start: str | None = None  # HH:MM, local time
    window_end: str | None = None
    timezone: str = "Europe/Oslo"

    @property
    def has_window(self) -> bool:
        """Whether sending is held to a send window (days, a start or an end)."""
        return bool(self.window_days or self.window_start or self.window_end)


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign as defined in its TOML file."""

    name: str
    from_address: str
    from_name: str
    organisation: str
    reply_to: str | None
    document_title: str
    document_url: str
    public_base_url: str
    criteria: Criteria
    templates: Mapping[str, Template]
    allow_links: bool = False
    allowed_link_domains: tuple[str, ...] = ()
    per_unit: bool = False
    dkim_selector: str = "varsel"
    dkim_ed25519: bool = False
    limits: Limits = field(default_factory=Limits)
    fields: Mapping[str, str] = field(default_factory=dict)
    document_file: str | None = None  # absolute path of the document served to the public
    sender_postal_address: str | None = None  # lines of the sender's postal address, for letters

    @property
    def sender_domain(self) -> str:
        return self.from_address.rsplit("@", 1)[1]

    @property
    def verify_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/kontroll"

    @property
    def unsubscribe_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/avmelding"

    def as_json(self) -> str:
        """The definition as JSON, for the store."""
        data = dataclasses.asdict(self)
        data["criteria"] = self.criteria.as_dict()
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CampaignSpec:
        """The definition back from the store."""
        data = json.loads(text)
        data["criteria"] = Criteria.from_mapping(
            {k: v for k, v in data["criteria"].items() if v not in (None, [], False)}
        )
        data["templates"] = {k: Template(**v) for k, v in data["templates"].items()}
        limits = data["limits"]
        limits["window_days"] = tuple(limits["window_days"])
        data["limits"] = Limits(**limits)
        data["allowed_link_domains"] = tuple(data["allowed_link_domains"])
        return cls(**data)


# -- reading a definition ---------------------------------------------------------------


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise CampaignError(Text("%(where)s: [%(key)s] skal være en tabell", where=where, key=key))
    return value


def _either(items: list[str]) -> str:
    """«a», «a eller b», «a, b eller c»: translated where it is shown (a Text)."""
    if len(items) == 1:
        return items[0]
    return Text("%(some)s eller %(last)s", some=listed(items[:-1]), last=items[-1])


def _known_keys(table: Mapping[str, Any], known: Iterable[str], where: str, name: str) -> None:
    """Refuse a key the table does not have: a misspelt key would otherwise be ignored."""
    known = tuple(known)
    for key in table:
        if key in known:
            continue
        homes = _homes(str(key), name)
        if homes:
            raise CampaignError(
                Text(
                    "%(where)s [%(table)s]: nøkkelen «%(key)s» hører hjemme i %(homes)s, "
                    "ikke i [%(table)s]",
                    where=where,
                    table=name,
                    key=key,
                    homes=_either([f"[{home}]" for home in homes]),
                )
            )
        close = difflib.get_close_matches(str(key), known, n=1)
        if close:
            raise CampaignError(
                Text(
                    "%(where)s [%(table)s]: ukjent nøkkel «%(key)s» (mente du «%(known)s»?)",
                    where=where,
                    table=name,
                    key=key,
                    known=close[0],
                )
            )
        raise CampaignError(
            Text(
                "%(where)s [%(table)s]: ukjent nøkkel «%(key)s» (kjente: %(known)s)",
                where=where,
                table=name,
                key=key,
                known=", ".join(known),
            )
        )


def _homes(key: str, name: str) -> list[str]:
    """The other tables that have the key: written under the wrong heading, most likely."""
    tables = {
        "campaign": CAMPAIGN_KEYS,
        "sender": SENDER_KEYS,
        "document": DOCUMENT_KEYS,
        "public": PUBLIC_KEYS,
        "links": LINKS_KEYS,
        "segment": CRITERIA_KEYS,
        "limits": LIMIT_KEYS,
        "window": WINDOW_KEYS,
    }
    return [table for table, keys in tables.items() if table != name and key in keys]


def _text(table: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise CampaignError(Text("%(where)s: mangler «%(key)s»", where=where, key=key))
        return None
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(Text("%(where)s: «%(key)s» skal være tekst", where=where, key=key))
    if "\x00" in value and not key.endswith("file"):
        # PostgreSQL's text cannot hold it, and no name, address or title needs it (a file's
        # name is refused by _check_file_name, which says so).
        raise CampaignError(Text(NUL_IN_TEXT, where=where, key=key))
    return value.strip()


def _header_text(table: Mapping[str, Any], key: str, where: str) -> str:
    """Text that reaches an e-mail header (the From name, the document e-mail's subject)."""
    value = _text(table, key, where) or ""
    if has_breakers(value):
        # A decoder turns "=?utf-8?q?...?=" into any text at all, line breaks included.
        raise CampaignError(
            Text(
                "%(where)s %(key)s: linjeskift, NUL eller «=?» kan ikke stå her, for teksten "
                "står i et e-posthode: «%(value)s»",
                where=where,
                key=key,
                value=visible(value[:60]),
            )
        )
    return value


def _sender_name(sender: Mapping[str, Any], where: str) -> str:
    name = _header_text(sender, "name", f"{where} [sender]")
    if names_an_address(name):
        raise CampaignError(
            Text(
                "%(where)s [sender] name: «%(name)s» har «@», «<» eller «>»; mottakerne kan ta "
                "det for avsenderens adresse. Skriv bare navnet.",
                where=where,
                name=visible(name),
            )
        )
    return name


def _address(value: str, where: str, settings: Settings) -> str:
    parsed = contacts.normalise_address(value, allow_test_domains=settings.allow_test_domains)
    if not parsed.usable:
        why = Text(contacts.explain(parsed.reason) if parsed.reason else N_("ugyldig"))
        raise CampaignError(
            Text(
                "%(where)s: «%(value)s» er ikke en brukbar e-postadresse (%(why)s)",
                where=where,
                value=visible(value),
                why=why,
            )
        )
    return parsed.address


def _https_url(value: str, where: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise CampaignError(
            Text(
                "%(where)s: «%(value)s» må være en https-adresse", where=where, value=visible(value)
            )
        )
    return value


def load_spec(path: Path, settings: Settings) -> CampaignSpec:
    """Read and check a campaign definition; every problem is a one-line CampaignError."""
    text = read_user_text(path, CampaignError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CampaignError(f"{path}: ugyldig TOML: {toml_problem(e)}") from None
    return spec_from_data(data, path, settings)


SENDER_KEYS = (
    "address",
    "name",
    "organisation",
    "reply_to",
    "dkim_selector",
    "dkim_ed25519",
    "postal_address",
)
TEMPLATE_KEYS = tuple(
    f"{kind}{end}" for kind in ("subject", "text", "html", "letter") for end in ("", "_file")
)
LIMIT_KEYS = (
    "rate_per_second",
    "connections",
    "per_domain_concurrency",
    "per_domain_per_minute",
    "retry_hours",
)
WINDOW_KEYS = ("days", "start", "end", "timezone")
CAMPAIGN_KEYS = ("name", "per_unit")
DOCUMENT_KEYS = ("title", "url", "file")
PUBLIC_KEYS = ("base_url",)
LINKS_KEYS = ("allow_clickable", "allowed_domains")


def spec_from_data(data: Mapping[str, Any], path: Path, settings: Settings) -> CampaignSpec:
    """Check a definition given as TOML's tables (the console's form makes the same tables).

    `path` names the source in messages; files the definition names are relative to its folder.
    """
    known = {
        "campaign",
        "sender",
        "document",
        "public",
        "links",
        "segment",
        "templates",
        "limits",
        "window",
        "fields",
    }
    for key in data:
        if key not in known:
            raise CampaignError(f"{path}: ukjent tabell [{key}]")
    where = str(path)
    camp = _table(data, "campaign", where)
    sender = _table(data, "sender", where)
    document = _table(data, "document", where)
    public = _table(data, "public", where)
    links = _table(data, "links", where)
    _known_keys(camp, CAMPAIGN_KEYS, where, "campaign")
    _known_keys(sender, SENDER_KEYS, where, "sender")
    _known_keys(document, DOCUMENT_KEYS, where, "document")
    _known_keys(public, PUBLIC_KEYS, where, "public")
    _known_keys(links, LINKS_KEYS, where, "links")
    name = _text(camp, "name", f"{where} [campaign]")
    from_address = _address(
        _text(sender, "address", f"{where} [sender]") or "", f"{where} [sender] address", settings
    )
    reply_to_raw = _text(sender, "reply_to", f"{where} [sender]", required=False)
    reply_to = (
        _address(reply_to_raw, f"{where} [sender] reply_to", settings) if reply_to_raw else None
    )
    document_url = _https_url(
        _text(document, "url", f"{where} [document]") or "", f"{where} [document] url"
    )
    document_file = _document_file(document, path)
    base = _text(public, "base_url", f"{where} [public]", required=False)
    public_base_url = _https_url(base or settings.public_base_url, f"{where} [public] base_url")
    length = base_url_length(public_base_url)
    if length > LONGEST_BASE_URL:
        # The settings' own is checked when they load (config.py): this is the campaign's.
        raise CampaignError(
            Text(
                "%(where)s: adressen er %(length)s tegn lang; avmeldingslenken i e-postenes "
                "List-Unsubscribe-felt må stå på én linje, så den kan være på høyst %(most)s tegn",
                where=f"{where} [public] base_url",
                length=length,
                most=LONGEST_BASE_URL,
            )
        )
    allowed = links.get("allowed_domains")
    if allowed is None:
        allowed = sorted(
            {urlsplit(document_url).hostname or "", urlsplit(public_base_url).hostname or ""}
        )
    if not isinstance(allowed, list) or not all(isinstance(d, str) for d in allowed):
        raise CampaignError(f"{where} [links]: allowed_domains skal være en liste med domener")
    allow_links = links.get("allow_clickable", False)
    if not isinstance(allow_links, bool):
        raise CampaignError(f"{where} [links]: allow_clickable skal være true eller false")
    segment_table = _table(data, "segment", where)
    if not segment_table and "segment" in data:
        raise CampaignError(
            Text(
                "%(where)s: [segment] er tom: skriv hvem kampanjen skal nå, for eksempel "
                'police_district = ["oslo"] eller municipality = ["0301"]',
                where=where,
            )
        )
    if not segment_table:
        raise CampaignError(
            Text("%(where)s: mangler [segment] (hvem kampanjen skal nå)", where=where)
        )
    criteria = Criteria.from_mapping(segment_table, f"{where} [segment]")
    _check_segment(segment_table, f"{where} [segment]")
    per_unit = camp.get("per_unit", False)
    if not isinstance(per_unit, bool):
        raise CampaignError(f"{where} [campaign]: per_unit skal være true eller false")
    dkim_ed25519 = sender.get("dkim_ed25519", False)
    if not isinstance(dkim_ed25519, bool):
        # bool("false") is True: a quoted value would have turned the second key on.
        raise CampaignError(f"{where} [sender]: dkim_ed25519 skal være true eller false")
    fields_table = _table(data, "fields", where)
    for key, value in fields_table.items():
        if not isinstance(value, str):
            raise CampaignError(f"{where} [fields]: «{key}» skal være tekst")
    return CampaignSpec(
        name=name or "",
        from_address=from_address,
        from_name=_sender_name(sender, where),
        organisation=_text(sender, "organisation", f"{where} [sender]") or "",
        reply_to=reply_to,
        document_title=_header_text(document, "title", f"{where} [document]"),
        document_url=document_url,
        public_base_url=public_base_url,
        criteria=criteria,
        templates=_templates(data, path),
        allow_links=allow_links,
        allowed_link_domains=tuple(d.strip().lower() for d in allowed if d.strip()),
        per_unit=per_unit,
        dkim_selector=_dkim_selector(sender, f"{where} [sender]"),
        dkim_ed25519=dkim_ed25519,
        limits=_limits(data, where),
        fields=dict(fields_table),
        document_file=document_file,
        sender_postal_address=_text(sender, "postal_address", f"{where} [sender]", required=False),
    )


def _dkim_selector(sender: Mapping[str, Any], where: str) -> str:
    """The selector in its DNS form: the key file and the DNS record are named by it."""
    from varsel.dkim import DkimKeyError, selector_name

    value = _text(sender, "dkim_selector", where, required=False) or "varsel"
    try:
        return selector_name(value)
    except DkimKeyError:
        raise CampaignError(
            f"{where} dkim_selector: {quoted(value)} kan ikke være en DKIM-selektor "
            "(bruk bokstavene a–z, tall og -, og punktum mellom ledd)"
        ) from None


def _check_segment(table: Mapping[str, Any], where: str) -> None:
    """The criteria resolve (municipalities, codes, forms); a mistake names the key it is in."""
    try:
        resolve(Criteria.from_mapping(table, where))
    except BadCriteriaError as whole:
        # Which key: each alone, in the file's order; a mistake of two keys together (an
        # employee rule without its minimum) is named by the table.
        for key, value in table.items():
            try:
                resolve(Criteria.from_mapping({key: value}, where))
            except BadCriteriaError as e:
                raise CampaignError(
                    Text("%(where)s %(key)s: %(error)s", where=where, key=key, error=e.message)
                ) from None
        raise CampaignError(Text("%(where)s: %(why)s", where=where, why=whole.message)) from None


def _document_file(document: Mapping[str, Any], path: Path) -> str | None:
    # Relative to the TOML file, as template files are; stored resolved so that the web
    # server finds it whatever its working folder.
    where = f"{path} [document]"
    name = _text(document, "file", where, required=False)
    if name is None:
        return None
    _check_file_name(name, where, "file")
    file = path.parent / name
    try:
        file = file.resolve()
        found = file.is_file()
    except OSError:  # a name too long for the file system, a loop of links
        found = False
    if not found:
        raise CampaignError(f"{where}: file {quoted(str(file))} finnes ikke")
    return str(file)


def _check_file_name(name: str, where: str, key: str) -> None:
    # No file system allows NUL in a name; Python's file calls raise ValueError on it, not
    # OSError. The name is not quoted: NUL would reach the terminal.
    if "\0" in name:
        raise CampaignError(
            f"{where}: «{key}» har et NUL-tegn (\\u0000) i filnavnet; skriv det uten"
        )


def _templates(data: Mapping[str, Any], path: Path) -> dict[str, Template]:
    from varsel.letter_render import default_letter_templates
    from varsel.message import default_templates

    subjects, texts, htmls = default_templates()
    letters = default_letter_templates()
    table = _table(data, "templates", str(path))
    _known_keys(table, LANGUAGES, str(path), "templates")
    out: dict[str, Template] = {}
    for lang in LANGUAGES:
        own = table.get(lang, {})
        if not isinstance(own, dict):
            raise CampaignError(f"{path} [templates.{lang}] skal være en tabell")
        _known_keys(own, TEMPLATE_KEYS, str(path), f"templates.{lang}")
        where = f"{path} [templates.{lang}]"

        def pick(kind: str, default: str, own: dict[str, Any] = own, where: str = where) -> str:
            if f"{kind}_file" in own:
                name = own[f"{kind}_file"]
                if not isinstance(name, str) or not name.strip():
                    raise CampaignError(f"{where}: «{kind}_file» skal være et filnavn")
                _check_file_name(name, where, f"{kind}_file")
                try:
                    # A template saved as Windows-1252 is refused in one line, as the TOML is.
                    return read_user_text(path.parent / name, CampaignError)
                except CampaignError as e:
                    raise CampaignError(f"{where} {kind}_file: {e.message}") from None
            value = own.get(kind, default)
            if not isinstance(value, str) or not value.strip():
                raise CampaignError(f"{where}: «{kind}» skal være tekst")
            return value

        out[lang] = Template(
            subject=pick("subject", subjects[lang]).strip(),
            text=pick("text", texts[lang]),
            html=pick("html", htmls[lang]),
            letter=pick("letter", letters[lang]),
        )
    return out


def _limits(data: Mapping[str, Any], where: str) -> Limits:
    table = _table(data, "limits", where)
    window = _table(data, "window", where)
    values: dict[str, Any] = {}
    defaults = Limits()
    _known_keys(table, LIMIT_KEYS, where, "limits")
    for key in LIMIT_KEYS:
        if key in table:
            values[key] = _positive(table[key], type(getattr(defaults, key)), where, key)
    if window:
        _known_keys(window, WINDOW_KEYS, where, "window")
        days = window.get("days", [])
        if not isinstance(days, list) or any(d not in WINDOW_DAYS for d in days):
            raise CampaignError(
                f"{where} [window]: days skal være en liste av {', '.join(WINDOW_DAYS)}"
            )
        values["window_days"] = tuple(days)
        for key in ("start", "end"):
            if key in window:
                values[f"window_{key}"] = window[key]
        if "timezone" in window:
            values["timezone"] = window["timezone"]
    limits = Limits(**values)
    check_window(limits, f"{where} [window]")
    return limits


def _positive(value: Any, kind: type[int] | type[float], where: str, key: str) -> int | float:
    """A limit's value: a finite number above zero, and a whole one where a count is meant."""
    whole = kind is int
    number: int | float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = kind(value)
        except (OverflowError, ValueError):  # inf or nan as a count
            number = None
    # TOML has inf and nan; 0.5 connections would have been none (int() cuts it to 0).
    if number is None or not math.isfinite(number) or number <= 0 or (whole and number != value):
        what = "et positivt heltall" if whole else "et positivt tall"
        raise CampaignError(f"{where} [limits]: {key} skal være {what}")
    return number
