"""What a rendered message says, checked: links, the units it names, code and addresses.

The linter (lint) renders each language's message for sample recipients and hands the results
here: links elsewhere, shorteners, redirects, http, tracking, clickable links and remote content;
the units each message names; the verification code and the verify, document and unsubscribe
addresses; and the parts of a built message that are attachments.
"""

from __future__ import annotations

import email.policy
import html
import re
from collections.abc import Iterable, Sequence
from email.parser import BytesParser

from varsel.campaign import CampaignSpec
from varsel.errors import N_, Text, listed
from varsel.link_checks import (
    SHORTENERS,
    is_redirect,
    is_tracking,
    split_url,
    under,
    urls_in_text,
)
from varsel.lint_report import Finding, error, warning
from varsel.message import Recipient, Rendered
from varsel.message_fields import (
    clean_text,
    references,  # the factory's own parser: the linter sees links exactly as it does
)
from varsel.unit import format_orgnr

# A message's parts as the findings name them; each is a message id, translated where shown.
_PARTS = (N_("emne"), N_("tekst"), N_("HTML"))


def _where(language: str, parts: Iterable[str]) -> str:
    """'nb (tekst og HTML)': which message and which of its parts."""
    found = [Text(p) for p in _PARTS if p in set(parts)]
    if not found:
        return language
    joined = (
        found[0]
        if len(found) == 1
        else Text("%(parts)s og %(last)s", parts=listed(found[:-1]), last=found[-1])
    )
    return Text("%(language)s (%(parts)s)", language=language, parts=joined)


def attachments_in(message: bytes) -> list[str]:
    """The parts of a message that are attachments or not text: 'application/pdf (rad.pdf)'."""
    parsed = BytesParser(policy=email.policy.default).parsebytes(message)
    found = []
    for part in parsed.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment" or part.get_content_maintype() != "text":
            filename = part.get_filename()
            found.append(part.get_content_type() + (f" ({filename})" if filename else ""))
    return found


def url_findings(spec: CampaignSpec, language: str, rendered: Sequence[Rendered]) -> list[Finding]:
    """Links elsewhere, shorteners, redirects, http, tracking, clickable links, remote content."""
    places: dict[str, set[str]] = {}  # URL -> the parts it is written in
    attributes: dict[str, set[str]] = {}  # URL -> the HTML attributes that reference it
    for r in rendered:
        for part, text in (("emne", r.subject), ("tekst", r.text), ("HTML", html.unescape(r.html))):
            for url in urls_in_text(text):
                places.setdefault(url, set()).add(part)
        for attribute, url in references(r.html):
            attributes.setdefault(url, set()).add(attribute)
            places.setdefault(url, set()).add("HTML")
    allowed = spec.allowed_link_domains
    allowed_text = ", ".join(allowed) if allowed else Text(N_("ingen"))
    findings: list[Finding] = []
    for url, parts in places.items():
        where = _where(language, parts)
        scheme, host, path, query = split_url(url)
        if scheme in ("http", "https") and not host:
            findings.append(
                error(
                    "link-domain",
                    language,
                    Text("%(where)s: ugyldig lenke %(url)s", where=where, url=url),
                )
            )
        elif under(host, SHORTENERS):
            findings.append(
                error(
                    "shortener",
                    language,
                    Text(
                        "%(where)s: %(url)s er en forkortet lenke (%(host)s); mottakeren kan ikke "
                        "se hvor den fører. Skriv hele adressen.",
                        where=where,
                        url=url,
                        host=host,
                    ),
                )
            )
        elif host and is_redirect(host, path, query):
            findings.append(
                error(
                    "redirect",
                    language,
                    Text(
                        "%(where)s: %(url)s er en videresending til en annen adresse; "
                        "skriv adressen mottakeren skal til.",
                        where=where,
                        url=url,
                    ),
                )
            )
        elif host and not under(host, allowed):
            findings.append(
                error(
                    "link-domain",
                    language,
                    Text(
                        "%(where)s: %(url)s går til %(host)s, som ikke er et tillatt domene "
                        "(tillatt: %(allowed)s).",
                        where=where,
                        url=url,
                        host=host,
                        allowed=allowed_text,
                    ),
                )
            )
        if scheme == "http":
            findings.append(
                error(
                    "http",
                    language,
                    Text("%(where)s: %(url)s bruker http://; bruk https://.", where=where, url=url),
                )
            )
        if is_tracking(query):
            findings.append(
                warning(
                    "tracking",
                    language,
                    Text(
                        "%(where)s: %(url)s har sporingsparametre (utm_, fbclid, gclid o.l.); "
                        "varsel sporer ikke mottakere.",
                        where=where,
                        url=url,
                    ),
                )
            )
        for attribute in sorted(attributes.get(url, ())):
            if attribute == "href" and not spec.allow_links:
                findings.append(
                    error(
                        "clickable-link",
                        language,
                        Text(
                            "%(where)s: klikkbar lenke (<a href>) til %(url)s, men kampanjen "
                            "tillater ikke klikkbare lenker ([links] allow_clickable).",
                            where=where,
                            url=url,
                        ),
                    )
                )
            elif attribute == "href" and scheme not in ("http", "https"):
                findings.append(
                    error(
                        "clickable-link",
                        language,
                        Text(
                            "%(where)s: klikkbar lenke til %(url)s; bare https-lenker er tillatt.",
                            where=where,
                            url=url,
                        ),
                    )
                )
            elif attribute != "href":
                findings.append(
                    error(
                        "remote-content",
                        language,
                        Text(
                            "%(where)s: HTML-delen laster %(url)s (%(attribute)s); meldingen skal "
                            "ikke hente bilder, skrifter eller annet fra nettet.",
                            where=where,
                            url=url,
                            attribute=attribute,
                        ),
                    )
                )
    return findings


def names_finding(language: str, rendered: Sequence[tuple[Recipient, Rendered]]) -> Finding | None:
    """Each recipient's units, by name and organisation number, in the text and the HTML."""
    missing: list[str] = []  # what is missing: a name, an orgnr, or both (Text)
    parts: set[str] = set()
    shared_only = True
    for recipient, r in rendered:
        # Registry names are in capitals; a template may well show them |title or |lower.
        texts = {"tekst": r.text.casefold(), "HTML": html.unescape(r.html).casefold()}
        for unit in recipient.units:
            name = clean_text(unit.name)
            orgnr = format_orgnr(unit.orgnr)
            for part, text in texts.items():
                has_name = name.casefold() in text
                # The orgnr may be grouped ("974 760 673", perhaps with no-break spaces).
                has_orgnr = unit.orgnr in re.sub(r"\s", "", text)
                if has_name and has_orgnr:
                    continue
                parts.add(part)
                shared_only = shared_only and len(recipient.units) > 1
                what = (
                    Text("«%(name)s»", name=name)
                    if not has_name
                    else Text("org.nr. %(orgnr)s", orgnr=orgnr)
                )
                if not has_name and not has_orgnr:
                    what = Text("«%(name)s» (org.nr. %(orgnr)s)", name=name, orgnr=orgnr)
                if what not in missing:
                    missing.append(what)
    if not missing:
        return None
    where, names = _where(language, parts), listed(missing[:4])
    if shared_only:
        # A literal % in a message id is written %%.
        message = Text(
            "%(where)s: meldingen nevner ikke virksomheten den gjelder når flere virksomheter "
            "deler e-postadressen; mangler %(missing)s. "
            "Nevn alle med {%% for u in units %%}…{%% endfor %%}.",
            where=where,
            missing=names,
        )
    else:
        message = Text(
            "%(where)s: meldingen nevner ikke virksomheten den gjelder; mangler %(missing)s. "
            "Bruk {{ unit.name }} og {{ unit.orgnr }}, eller en løkke over units.",
            where=where,
            missing=names,
        )
    return error("names", language, message)


def content_findings(
    spec: CampaignSpec, language: str, r: Rendered, code: str, token: str
) -> list[Finding]:
    """The code, the verify, document and unsubscribe URLs, in the text and the HTML."""
    texts = {"tekst": r.text, "HTML": html.unescape(r.html)}
    findings = []
    check = Text(N_("mottakeren trenger den for å sjekke at e-posten er ekte"))
    checks = (
        ("missing-code", (code, code.replace("-", "")), Text(N_("kontrollkoden")), check),
        (
            "missing-verify-url",
            (spec.verify_url,),
            Text("kontrolladressen %(url)s", url=spec.verify_url),
            check,
        ),
        (
            "missing-document-url",
            (spec.document_url,),
            Text("dokumentadressen %(url)s", url=spec.document_url),
            Text(N_("mottakeren skal kunne hente dokumentet selv, uten å klikke")),
        ),
        (
            "missing-unsubscribe-url",
            (f"{spec.unsubscribe_url}/{token}",),
            Text(N_("avmeldingsadressen {{ unsubscribe_url }}")),
            Text(N_("mottakeren skal kunne melde seg av uten å svare på e-posten")),
        ),
    )
    for finding_code, values, what, why in checks:
        parts = [p for p, text in texts.items() if not any(v in text for v in values)]
        if parts:
            findings.append(
                error(
                    finding_code,
                    language,
                    Text(
                        "%(where)s: %(what)s står ikke i meldingen; %(why)s.",
                        where=_where(language, parts),
                        what=what,
                        why=why,
                    ),
                )
            )
    return findings
