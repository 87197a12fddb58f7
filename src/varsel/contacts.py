"""E-mail addresses from the registry and from operators: clean, split, validate, classify."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

import email_validator
from email_validator import EmailNotValidError, validate_email

from varsel.errors import N_


class Reason(StrEnum):
    """Why an address cannot be used; stored in contacts.reason."""

    EMPTY = "empty"  # nothing left after cleaning (operator input only)
    PHONE_NUMBER = "phone_number"  # a phone number typed into the e-mail field
    NO_AT_SIGN = "no_at_sign"  # a word or fragment without @, e.g. half of "post@firma,no"
    NO_DOT_IN_DOMAIN = "no_dot_in_domain"  # "post@firmano": the dot before the TLD is missing
    NON_ASCII_LOCAL_PART = "non_ascii_local_part"  # "bjørn@": needs SMTPUTF8, which we don't send
    INVALID_DOMAIN = "invalid_domain"  # the part after @ is not a host name ("firma..no", ".n0")
    INVALID_SYNTAX = "invalid_syntax"  # anything else email-validator rejects ("a@b@c.no", "@x.no")
    RESERVED_DOMAIN = "reserved_domain"  # example.com, .test, .invalid, .local: no real mailbox
    TOO_LONG = "too_long"  # over the SMTP limits (254 octets, 63 per label)
    SEVERAL_ADDRESSES = "several_addresses"  # operator typed more than one address in one field


_EXPLANATIONS: dict[Reason, str] = {
    Reason.EMPTY: N_("tom adresse"),
    Reason.PHONE_NUMBER: N_("telefonnummer i e-postfeltet"),
    Reason.NO_AT_SIGN: N_("mangler @"),
    Reason.NO_DOT_IN_DOMAIN: N_("mangler punktum i domenet etter @"),
    Reason.NON_ASCII_LOCAL_PART: N_("æ, ø, å eller andre spesialtegn foran @"),
    Reason.INVALID_DOMAIN: N_("ugyldig domene etter @"),
    Reason.INVALID_SYNTAX: N_("ugyldig e-postadresse"),
    Reason.RESERVED_DOMAIN: N_("reservert domene som ikke kan motta e-post"),
    Reason.TOO_LONG: N_("adressen er for lang"),
    Reason.SEVERAL_ADDRESSES: N_("flere adresser i samme felt"),
}


def explain(reason: Reason) -> str:
    """A short Norwegian (Bokmål) explanation of a reason, for previews."""
    return _EXPLANATIONS[reason]


@dataclass(frozen=True, slots=True)
class Address:
    """One address piece and what varsel may do with it."""

    address: str  # normalised (lower case, A-label domain) when usable; the cleaned piece otherwise
    usable: bool
    reason: Reason | None  # None when usable
    domain: str | None  # A-label domain when usable
    role: bool  # a role address (post@, firmapost@, ...) rather than a person's


# Compared after lower-casing, with separators removed ("daglig.leder" -> "dagligleder") and
# trailing digits dropped from each segment ("post1"); see is_role_local_part.
_ROLE_LOCAL_PARTS = frozenset(
    {
        # Norwegian
        "post", "postmottak", "postkasse", "firmapost", "firma", "kontakt", "informasjon",
        "epost", "mail", "kontor", "kontoret", "admin", "adm", "administrasjon", "regnskap",
        "faktura", "fakturamottak", "fakturering", "okonomi", "økonomi", "lonn", "lønn", "salg",
        "kundeservice", "kundesenter", "kunde", "service", "booking", "bestilling", "bestill",
        "timebestilling", "ordre", "resepsjon", "resepsjonen", "ekspedisjon", "mottak", "hei",
        "hallo", "styret", "styreleder", "dagligleder", "leder", "sekretariat", "sekretariatet",
        "sekretaer", "sekretær", "personal", "hr", "marked", "markedsforing", "markedsføring",
        "innkjop", "innkjøp", "drift", "it", "teknisk", "verksted", "verkstedet", "butikk",
        "butikken", "nettbutikk", "hjelp", "kundestotte", "kundestøtte", "jobb", "presse",
        "revisjon", "bokforing", "bokføring", "avdeling", "felles",
        # English
        "info", "office", "sales", "support", "contact", "hello", "order", "orders", "invoice",
        "invoices", "accounting", "accounts", "billing", "reception", "shop", "webshop", "help",
        "helpdesk", "jobs", "careers", "press", "media", "marketing", "board", "team",
        "postmaster", "webmaster", "hostmaster", "abuse", "security", "noreply", "donotreply",
    }
)  # fmt: skip
_ROLE_SEPARATORS = re.compile(r"[._+-]")
_DIGITS = "0123456789"
_MAX_ROLE = 64  # no role name is longer; the bound keeps hostile input linear


def is_role_local_part(local: str) -> bool:
    """True if a local part names a role or function (post, firmapost-oslo) rather than a person."""
    if len(local) > _MAX_ROLE:
        return False
    local = local.lower()
    if local in _ROLE_LOCAL_PARTS:
        return True
    # Only prefixes count: "post.oslo" and "daglig.leder" are roles, while "kari.salg" is Kari,
    # who happens to work in sales.
    joined = ""
    for segment in _ROLE_SEPARATORS.split(local):
        joined += segment.rstrip(_DIGITS)
        if joined in _ROLE_LOCAL_PARTS:
            return True
    return False


# Characters that are deleted outright: C0/C1 controls that are not whitespace, soft hyphen,
# zero-width and bidi marks, BOM, lone surrogates. Whitespace controls (tab, newline, NEL) and
# Unicode spaces such as NBSP are left to str.split(), which treats them all as separators.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\ufeff\ud800-\udfff]"
)
# "Ola Nordmann <ola@firma.no>": the display name runs from the start of a ;/,-separated chunk.
_DISPLAY_NAME = re.compile(r"(?:^|(?<=[;,]))[^<>;,@]*<([^<>]*)>")
_CHUNK_SEPARATORS = re.compile(r"[;,]")
_LEADING = "<([{\"'«"
_TRAILING = ">)]}\"'».:!?"
_OPENER = {">": "<", ")": "(", "]": "[", "}": "{", "»": "«"}
# Digits with the punctuation people put in phone numbers; "+47", "900", "(0)22", "22-33".
# Written without nested quantifiers over digits, so a long run of digits cannot backtrack.
_PHONE_TOKEN = re.compile(r"\+?[().\-/]*\d[\d().\-/]*\Z")
_PHONE_MIN_DIGITS = 5
# Words between or before addresses that say nothing about an address: dropped, not reported.
_FILLER = frozenset(
    {"/", "|", "&", "+", "-", "og", "eller", "and", "or", "e-post", "epost", "e-mail", "email",
     "mail", "mailto", "tlf", "tel", "telefon", "mob", "mobil"}
)  # fmt: skip

# A subset of what email-validator accepts: plain ASCII dot-atom local part, LDH labels, a TLD
# ending in a letter, no "xx--" labels (Punycode and R-LDH need the full IDNA checks). Nearly all
# registry addresses match, and skipping validate_email for them is what keeps an import fast;
# the test suite re-validates every such result with email-validator.
_PLAIN = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@"
    r"((?:(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?!..--)(?:[a-z0-9][a-z0-9-]{0,61})?[a-z])\Z",
    re.IGNORECASE,
)
_PLAIN_LOCAL = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*\Z", re.IGNORECASE)
_MAX_ADDRESS = 254  # email_validator.rfc_constants.EMAIL_MAX_LENGTH
_MAX_DOMAIN = 253

# email-validator's special-use names (arpa, invalid, local, localhost, onion, test) plus names
# it lets through because DNS would catch them, and we never ask DNS.
_RESERVED_DOMAINS = frozenset(
    {
        *email_validator.SPECIAL_USE_DOMAIN_NAMES,
        "example", "example.com", "example.net", "example.org",  # RFC 2606
        "internal",  # ICANN, 2024: private-use TLD
        "alt",  # RFC 9476
    }
)  # fmt: skip
_TEST_DOMAIN = "test"


def _is_reserved(domain: str, allow_test_domains: bool) -> bool:
    suffix = domain
    while True:
        if suffix in _RESERVED_DOMAINS and not (allow_test_domains and suffix == _TEST_DOMAIN):
            return True
        _, dot, suffix = suffix.partition(".")
        if not dot:
            return False


# email-validator has no error codes, only English messages; the first fragment found decides.
# test_contacts pins each mapping with a concrete address, so an upgrade that rewords a message
# fails loudly instead of quietly turning into INVALID_SYNTAX.
_ERROR_REASONS = (
    ("too long", Reason.TOO_LONG),
    ("so many characters", Reason.TOO_LONG),  # a label over 63 octets
    ("special-use or reserved", Reason.RESERVED_DOMAIN),
    ("should have a period", Reason.NO_DOT_IN_DOMAIN),
    ("Internationalized characters before the @-sign", Reason.NON_ASCII_LOCAL_PART),
    ("must have an @-sign", Reason.NO_AT_SIGN),
    ("after the @-sign", Reason.INVALID_DOMAIN),
)


def _reason_from_error(message: str) -> Reason:
    return next((r for fragment, r in _ERROR_REASONS if fragment in message), Reason.INVALID_SYNTAX)


def _unusable(piece: str, reason: Reason) -> Address:
    local, at, _ = piece.partition("@")
    return Address(piece, False, reason, None, bool(at) and is_role_local_part(local))


def _usable(local: str, domain: str) -> Address:
    local, domain = local.lower(), domain.lower()
    return Address(f"{local}@{domain}", True, None, domain, is_role_local_part(local))


@functools.lru_cache(maxsize=1 << 16)
def _classify(piece: str, allow_test_domains: bool) -> Address:
    """Validate one cleaned piece that contains no separators."""
    if len(piece) <= _MAX_ADDRESS and (plain := _PLAIN.match(piece)):
        domain = plain.group(1)
        if len(domain) <= _MAX_DOMAIN:
            if _is_reserved(domain.lower(), allow_test_domains):
                return _unusable(piece, Reason.RESERVED_DOMAIN)
            return _usable(piece[: plain.start(1) - 1], domain)
    return _precheck(piece) or _validate(piece, allow_test_domains)


def _precheck(piece: str) -> Address | None:
    """The failures we can name without email-validator, or None."""
    if _PHONE_TOKEN.match(piece):
        return _phone(piece)
    reason = _precheck_reason(piece)
    return None if reason is None else _unusable(piece, reason)


def _precheck_reason(piece: str) -> Reason | None:
    at_signs = piece.count("@")
    if at_signs == 0:
        return Reason.NO_AT_SIGN
    if at_signs > 1:
        return Reason.INVALID_SYNTAX
    if len(piece) > _MAX_ADDRESS:
        return Reason.TOO_LONG  # also spares email-validator a huge input
    local, _, domain = piece.partition("@")
    if not local.isascii():
        return Reason.NON_ASCII_LOCAL_PART
    # ASCII "." only: full-width and ideographic dots become "." in email-validator's UTS-46 step.
    if domain and domain.isascii() and "." not in domain and domain.lower() != _TEST_DOMAIN:
        return Reason.NO_DOT_IN_DOMAIN
    return None


def _validate(piece: str, allow_test_domains: bool) -> Address:
    """Validate with email-validator: syntax, IDNA and special-use names, never DNS."""
    try:
        valid = validate_email(
            piece,
            check_deliverability=False,
            allow_smtputf8=False,
            test_environment=allow_test_domains,
        )
    except EmailNotValidError as error:
        reason = _reason_from_error(str(error))
        # Messages such as "two periods in a row" don't say which side of the @ is at fault; with
        # a plain local part it can only be the domain.
        if reason is Reason.INVALID_SYNTAX and _PLAIN_LOCAL.match(piece.partition("@")[0]):
            reason = Reason.INVALID_DOMAIN
        return _unusable(piece, reason)
    except ValueError:
        # The idna package raises its own UnicodeError subclasses on a few exotic inputs that
        # email-validator does not wrap; none of them is an address.
        return _unusable(piece, Reason.INVALID_SYNTAX)
    if valid.ascii_local_part is None:  # unreachable with allow_smtputf8=False; keeps mypy sure
        return _unusable(piece, Reason.NON_ASCII_LOCAL_PART)
    if _is_reserved(valid.ascii_domain.lower(), allow_test_domains):
        return _unusable(piece, Reason.RESERVED_DOMAIN)
    return _usable(valid.ascii_local_part, valid.ascii_domain)


def _phone(text: str) -> Address:
    digits = sum(c.isdigit() for c in text)
    reason = Reason.PHONE_NUMBER if digits >= _PHONE_MIN_DIGITS else Reason.NO_AT_SIGN
    return Address(text, False, reason, None, False)


def _clean_token(token: str) -> str:
    """Strip brackets, quotes, mailto: and trailing punctuation from one whitespace-free token."""
    for _ in range(3):  # "<mailto:post@firma.no>." needs two rounds
        before = token
        token = token.lstrip(_LEADING)
        stripped = token.rstrip(_TRAILING)
        if len(stripped) < len(token):
            # A closer whose opener is still there belongs to the piece: "post@[10.0.0.1]".
            tail = token[len(stripped) :]
            openers = {o for o in _OPENER.values() if o in stripped}
            keep = max((i + 1 for i, c in enumerate(tail) if _OPENER.get(c) in openers), default=0)
            token = stripped + tail[:keep]
        if token[:7].lower() == "mailto:":
            token = token[7:].partition("?")[0]  # a mailto: URI may carry ?subject=...
        if token == before:
            break
    return token


def _clean(raw: str) -> str:
    if not (raw.isascii() and raw.isprintable()):
        raw = _INVISIBLE.sub("", raw)
    if "<" in raw:
        raw = _DISPLAY_NAME.sub(r" \1 ", raw)
    return raw


def _pieces(chunk: str) -> list[str]:
    """Split one ;/,-separated chunk on whitespace, keeping phone numbers and "post @ x" whole."""
    pieces: list[list[str]] = []  # each piece as its parts, joined at the end
    phone = False  # whether pieces[-1] is a phone number still being collected
    for raw_token in chunk.split():
        token = _clean_token(raw_token)
        if not token or token.lower() in _FILLER:
            phone = False  # "22 33 44 55 / 99 88 77 66" is two numbers
            continue
        if "@" not in token and _PHONE_TOKEN.match(token):
            if phone:
                pieces[-1].append(" ")
                pieces[-1].append(token)
            else:
                pieces.append([token])
                phone = True
            continue
        last = pieces[-1] if pieces and not phone else None
        if last is not None and token.startswith("@") and not any("@" in p for p in last):
            last.append(token)  # "post @firma.no", "post @ firma.no"
        elif last is not None and last[-1].endswith("@") and "@" not in token:
            last.append(token)  # "post@ firma.no"
        elif token.count("@") > 1 and "/" in token and all("@" in p for p in token.split("/")):
            pieces.extend([p] for p in token.split("/"))  # "post@a.no/ola@b.no"
        else:
            pieces.append([token])
        phone = False
    return ["".join(parts) for parts in pieces]


@functools.lru_cache(maxsize=1 << 16)
def _parse(raw: str, allow_test_domains: bool) -> tuple[Address, ...]:
    found: dict[str, Address] = {}
    for chunk in _CHUNK_SEPARATORS.split(_clean(raw)):
        for piece in _pieces(chunk):
            # Only phone numbers are kept together across spaces.
            address = _phone(piece) if " " in piece else _classify(piece, allow_test_domains)
            # Lower case: the contacts table keys on (orgnr, source, address), and "POST@X.NO"
            # beside "post@x.no" is one mailbox.
            found.setdefault(address.address.lower(), address)
    return tuple(found.values())


def parse_addresses(raw: str | None, *, allow_test_domains: bool = False) -> tuple[Address, ...]:
    """Every address piece in a registry e-mail field, usable or not, without duplicates."""
    if not raw:
        return ()
    return _parse(raw, allow_test_domains)


def normalise_address(text: str, *, allow_test_domains: bool = False) -> Address:
    """One address typed by an operator or into a web form, normalised and validated."""
    text = _clean(text).strip()
    at_signs = text.count("@")
    if at_signs > 1 and sum("@" in a.address for a in _parse(text, allow_test_domains)) > 1:
        return Address(text, False, Reason.SEVERAL_ADDRESSES, None, False)
    if at_signs == 1:
        before, _, after = text.partition("@")
        text = f"{before.rstrip()}@{after.lstrip()}"  # "post @ firma.no"
    tokens = [t for t in map(_clean_token, text.split()) if t and t.lower() not in _FILLER]
    if not tokens:
        return Address(text, False, Reason.EMPTY, None, False)
    if len(tokens) == 1:
        return _classify(tokens[0], allow_test_domains)
    if all(_PHONE_TOKEN.match(t) for t in tokens):
        return _phone(" ".join(tokens))
    # A space inside one address ("ola nordmann@firma.no"): let the validator say what is wrong
    # rather than guess which half was meant.
    return _classify(" ".join(tokens), allow_test_domains)
