"""The public register: every campaign that has reached anyone, so readers can check a message."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from varsel import municipality
from varsel.campaign import LANGUAGES, CampaignSpec
from varsel.db import Database
from varsel.errors import VarselError
from varsel.sandbox import OperatorSandbox
from varsel.segment_criteria import Criteria, resolve
from varsel.verify import GENUINE_STATES


@dataclass(frozen=True)
class Entry:
    """One genuine campaign as the public sees it."""

    campaign_id: int
    name: str
    first_sent_at: str  # ISO 8601 UTC of the first message that may have left
    sender_address: str
    organisation: str
    subject: str  # the Bokmål subject line
    subjects: Mapping[str, str]  # by language (nb, nn, en), each the campaign has sent in
    areas: tuple[str, ...]  # place names; empty for the whole country
    min_employees: int | None
    industries: tuple[str, ...]  # NACE code prefixes
    document_title: str
    document_url: str
    has_file: bool  # the document can be sent by e-mail from our own site
    sender_name: str = ""  # the From line's name, as a mail program shows it
    # The employee rule the segment applied (segment_criteria.Resolved.rule): none, registered,
    # exact or registered_undecided; with min_employees it says which businesses were chosen.
    employee_rule: str = "none"

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "first_sent_at": self.first_sent_at,
            "sender_address": self.sender_address,
            "sender_name": self.sender_name,
            "organisation": self.organisation,
            "subject": self.subject,
            "subjects": dict(self.subjects),
            "target": {
                "areas": list(self.areas),
                "min_employees": self.min_employees,
                "employee_rule": self.employee_rule,
                "industries": list(self.industries),
            },
            "document": {"title": self.document_title, "url": self.document_url},
        }


def area_names(spec: CampaignSpec) -> tuple[str, ...]:
    """The places a campaign's criteria name, in words: as the segment read them, 2024 names."""
    c = spec.criteria
    names: list[str] = []
    for term in c.police_districts:
        names += _places(
            term, municipality.resolve_police_district, municipality.police_district_of
        )
    for term in c.counties:
        names += _places(term, municipality.resolve_county, _county)
    for term in c.municipalities:
        try:
            numbers = municipality.resolve_municipality(term)
        except VarselError:
            numbers = []
        names += [municipality.name(n) or n for n in numbers] or [term.strip()]
    return tuple(dict.fromkeys(names))


def _county(number: str) -> str:
    return municipality.county_of(number)[1]


def _places(
    term: str, resolve_term: Callable[[str], list[str]], name_of: Callable[[str], str]
) -> list[str]:
    """The districts or counties a term selected, by name; the term as typed if it cannot say."""
    try:
        numbers = set(resolve_term(term))
        found: dict[str, set[str]] = {}
        for number in sorted(numbers):
            found.setdefault(name_of(number), set()).add(number)
        # Named only when each is selected whole: a former county (Viken) is the 2024 counties
        # it became, and anything the names would overstate is shown as the operator typed it.
        if found and all(set(resolve_term(place)) <= numbers for place in found):
            return list(found)
    except VarselError:
        # An old campaign's stored spec may name a place the tables no longer know.
        pass
    return [term.strip()]


def employee_rule(spec: CampaignSpec) -> str:
    """The employee rule the campaign's segment applied, as segment_criteria.resolve names it."""
    c = spec.criteria
    try:
        return resolve(Criteria(min_employees=c.min_employees, employee_rule=c.employee_rule)).rule
    except VarselError:
        # Not reachable for a stored campaign (create refuses it); the threshold alone then.
        return "exact" if c.min_employees else "none"


_SUBJECTS = OperatorSandbox(autoescape=False)


def subject(spec: CampaignSpec, language: str = "nb") -> str:
    """The campaign's subject line in a language as readers saw it (without per-recipient parts)."""
    template = spec.templates.get(language) or spec.templates["nb"]
    return _subject(
        template.subject,
        spec.name,
        spec.organisation,
        spec.from_name,
        spec.from_address,
        tuple(sorted(spec.fields.items())),
        spec.document_title,
    )


@functools.lru_cache(maxsize=256)
def _subject(
    source: str,
    name: str,
    organisation: str,
    from_name: str,
    from_address: str,
    fields: tuple[tuple[str, str], ...],
    document_title: str,
) -> str:
    # Compiling the template costs more than the rest of a verify page: one per campaign.
    context = {
        "sender": {"organisation": organisation, "name": from_name, "address": from_address},
        "fields": dict(fields),
        "document_title": document_title,
    }
    try:
        return " ".join(_SUBJECTS.from_string(source).render(context).split())
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError):
        # A subject that needs the recipient (a unit's name), or fails without one: the
        # campaign's name will do. The page is public: no subject may make it fail.
        return name


def entries(db: Database) -> list[Entry]:
    """Every campaign at least one message of which may have left, newest first."""
    marks = ", ".join("?" for _ in GENUINE_STATES)
    # A row per campaign and language it has sent in: the register shows each language's
    # subject, so that a reader of a Nynorsk or English message finds theirs.
    rows = db.query(
        "SELECT c.id, c.name, c.spec, first.at, first.language FROM campaigns c JOIN ("
        "SELECT campaign_id, language, min(coalesce(sent_at, data_started_at, updated_at)) AS at "
        f"FROM deliveries WHERE state IN ({marks}) GROUP BY campaign_id, language"
        ") first ON first.campaign_id = c.id",
        [s.value for s in GENUINE_STATES],
    )
    campaigns: dict[int, tuple[str, str, str, set[str]]] = {}
    for campaign_id, name, spec_json, at, language in rows:
        known = campaigns.get(int(campaign_id))
        if known is None:
            campaigns[int(campaign_id)] = (name, spec_json, at, {language})
        else:
            known[3].add(language)
            if at < known[2]:
                campaigns[int(campaign_id)] = (name, spec_json, at, known[3])
    out = []
    newest_first = sorted(campaigns.items(), key=lambda c: (c[1][2], c[0]), reverse=True)
    for campaign_id, (name, spec_json, first, languages) in newest_first:
        spec = CampaignSpec.from_json(spec_json)
        out.append(
            Entry(
                int(campaign_id),
                name,
                first,
                spec.from_address,
                spec.organisation,
                subject(spec),
                {lang: subject(spec, lang) for lang in LANGUAGES if lang in languages},
                area_names(spec),
                spec.criteria.min_employees,
                spec.criteria.nace,
                spec.document_title,
                spec.document_url,
                spec.document_file is not None,
                spec.from_name,
                employee_rule(spec),
            )
        )
    return out


def entry(db: Database, campaign_id: int) -> Entry | None:
    """One genuine campaign, or None if it is not in the register."""
    return next((e for e in entries(db) if e.campaign_id == campaign_id), None)
