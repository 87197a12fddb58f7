"""Checks a campaign before it is sent.

The linter renders every language's templates for sample recipients taken from the campaign's
own frozen recipients, exactly as the sender would, and reports what would make a recipient
distrust the message (links elsewhere, shorteners, attachments, no code) or stop it being built.
Beside it: what it finds (lint_report), the templates' sources (lint_templates), what a
rendered message says (lint_content), the sample recipients (samples), and the previews
(preview).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable

from varsel import outbox
from varsel.campaign import LANGUAGES, Campaign, CampaignSpec, CampaignStatus, get_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.dkim import DkimKey, DkimKeyError, Signer, load_key
from varsel.errors import Text
from varsel.keys import key_path
from varsel.link_checks import under_base
from varsel.lint_content import attachments_in, content_findings, names_finding, url_findings
from varsel.lint_report import Finding, LintReport, Severity, error, warning
from varsel.lint_templates import template_findings
from varsel.message import MessageError, MessageFactory, MessageSpec, UnitRef
from varsel.message_fields import clean_text
from varsel.municipality import name as municipality_name
from varsel.samples import FALLBACK_UNITS, sample_code, sample_recipient, sample_units
from varsel.send_config import message_spec
from varsel.snapshot import STALE_DAYS, STALE_WARNING, data_age

# -- the checks -----------------------------------------------------------------------------


class _LintFactory(MessageFactory):
    """The sender's factory, except that it lets every link through to be reported here."""

    def _check_links(self, html_text: str) -> None:
        # The real factory stops at the first link it refuses; the linter wants all of them,
        # each with where it is. lint_content.url_findings refuses everything the factory would.
        return


def _key_findings(settings: Settings, spec: CampaignSpec) -> tuple[list[Finding], Signer | None]:
    """The DKIM keys of the From domain: present, usable, and readable by the owner only."""
    findings: list[Finding] = []
    domain, selector = spec.sender_domain, spec.dkim_selector
    selectors = [selector, f"{selector}e"] if spec.dkim_ed25519 else [selector]
    keys: list[DkimKey] = []
    for name in selectors:
        try:
            path = key_path(settings, domain, name)
            if not path.exists():
                # The second selector is the Ed25519 key's: made as RSA it would sign twice so.
                missing = (
                    Text(
                        "Avsenderdomenet %(domain)s har ingen DKIM-nøkkel: %(path)s finnes "
                        "ikke. Lag den med «varsel keys generate --domain %(domain)s "
                        "--selector %(selector)s» og publiser DNS-posten.",
                        domain=domain,
                        path=str(path),
                        selector=name,
                    )
                    if name == selector
                    else Text(
                        "Avsenderdomenet %(domain)s har ingen Ed25519-nøkkel for DKIM: %(path)s "
                        "finnes ikke. Lag den med «varsel keys generate --domain %(domain)s "
                        "--selector %(selector)s --algorithm ed25519» og publiser DNS-posten.",
                        domain=domain,
                        path=str(path),
                        selector=name,
                    )
                )
                findings.append(error("dkim-key", None, missing))
                continue
            key = load_key(path, domain, name)
            # RSA under the selector, Ed25519 under its second: Ed25519 alone is a signature
            # most receivers cannot check (RFC 8463), and RSA twice is not what was asked for.
            wanted = "rsa" if name == selector else "ed25519"
            if key.algorithm != wanted:
                findings.append(
                    error(
                        "dkim-key",
                        None,
                        Text(
                            "DKIM-nøkkelen %(path)s er %(found)s, men selektoren %(selector)s "
                            "skal ha en %(wanted)s-nøkkel: flytt filen bort og lag en med "
                            "«varsel keys generate --domain %(domain)s --selector %(selector)s "
                            "--algorithm %(wanted)s», eller velg en ny dkim_selector.",
                            path=str(path),
                            found=key.algorithm,
                            selector=name,
                            wanted=wanted,
                            domain=domain,
                        ),
                    )
                )
                continue
            keys.append(key)
        except DkimKeyError as e:
            findings.append(
                error(
                    "dkim-key",
                    None,
                    Text("Avsenderdomenet %(domain)s: %(error)s", domain=domain, error=e.message),
                )
            )
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            findings.append(
                warning(
                    "dkim-key-mode",
                    None,
                    Text(
                        "DKIM-nøkkelen %(path)s kan leses av andre enn eieren (modus %(mode)s); "
                        "gjør den privat med «chmod 600 %(path)s».",
                        path=str(path),
                        mode=format(mode, "04o"),
                    ),
                )
            )
    return findings, Signer(keys) if keys else None


SAMPLE_WHERE = "%(where)s: "  # how the message factory's render errors begin


def _without_sample_delivery(message: str) -> str:
    """A render error without the delivery it names: the sample's made-up id would only confuse.

    The factory's message is "%(where)s: …" with where "levering 0"; the rest of its id is
    translated on its own (test_web_catalogs checks that each such rest is in the catalogs).
    """
    if (
        isinstance(message, Text)
        and message.msgid.startswith(SAMPLE_WHERE)
        and message.params.get("where") == "levering 0"
    ):
        params = {k: v for k, v in message.params.items() if k != "where"}
        return Text(message.msgid.removeprefix(SAMPLE_WHERE), **params)
    return message.removeprefix("levering 0: ")


UNITS_NAMED = 5  # units a finding names; the rest are counted


def unit_findings(db: Database, campaign_id: int, mspec: MessageSpec, code: str) -> list[Finding]:
    """Units whose registry data cannot stand in their message's subject (an encoded word).

    The sender fails those deliveries alone, with the reason, and sends the rest: a warning,
    unless no unit at all can be sent to.
    """
    try:
        factory = _LintFactory(mspec, None)
    except MessageError:
        return []  # a template that cannot be compiled: each language's findings say why
    if all(factory.fixed_subject(language) is not None for language in mspec.subjects):
        return []  # no subject names a unit: nothing of the registry's goes in a header
    token = secrets.token_urlsafe(18)
    total, unusable = 0, []
    for orgnr, name, municipality, language in db.query(
        "SELECT orgnr, name, municipality, language FROM recipients WHERE campaign_id = ? "
        "ORDER BY orgnr",
        (campaign_id,),
    ):
        if language not in mspec.subjects:
            continue  # reported as a missing template
        total += 1
        unit = UnitRef(orgnr, name, municipality_name(municipality) if municipality else None)
        try:
            factory.subject(sample_recipient([unit], language, code, token))
        except MessageError:
            unusable.append(unit)
    if not unusable:
        return []
    named = "; ".join(f"{u.orgnr} «{clean_text(u.name)[:80]}»" for u in unusable[:UNITS_NAMED])
    if len(unusable) > UNITS_NAMED:
        named = Text("%(named)s og %(more)s til", named=named, more=len(unusable) - UNITS_NAMED)
    message = Text(
        "%(count)s av %(total)s virksomheter har et navn eller andre registerdata som ikke kan "
        "stå i emnet; meldingene til dem feiler ved sending, de andre sendes: %(units)s",
        count=len(unusable),
        total=total,
        units=named,
    )
    if len(unusable) == total:
        return [error("unusable-units", None, message)]
    return [warning("unusable-units", None, message)]


def _language_findings(
    units: tuple[UnitRef, UnitRef],
    spec: CampaignSpec,
    mspec: MessageSpec,
    signer: Signer | None,
    language: str,
    code: str,
) -> list[Finding]:
    """Everything about one language's message: renders, names, codes, links, the MIME parts."""
    one = dataclasses.replace(
        mspec,
        subjects={language: mspec.subjects[language]},
        text_templates={language: mspec.text_templates[language]},
        html_templates={language: mspec.html_templates[language]},
    )
    first, second = units
    token = secrets.token_urlsafe(18)
    recipients = [sample_recipient([u], language, code, token) for u in (first, second)]
    if not spec.per_unit:
        # An address several units share gets one message that must name them all.
        recipients.append(sample_recipient([first, second], language, code, token))
    try:
        factory = _LintFactory(one, signer)
        rendered = [(r, factory.render(r)) for r in recipients]
    except MessageError as e:
        unusable = Text(
            "%(language)s: malen kan ikke brukes: %(error)s",
            language=language,
            error=_without_sample_delivery(e.message),
        )
        return [error("template", language, unusable)]
    findings: list[Finding] = []
    names = names_finding(language, rendered)
    if names is not None:
        findings.append(names)
    findings += content_findings(spec, language, rendered[0][1], code, token)
    findings += url_findings(spec, language, [r for _, r in rendered])
    subject = rendered[0][1].subject
    if len(subject) > 78:
        findings.append(
            warning(
                "subject-length",
                language,
                Text(
                    "%(language)s (emne): emnet er %(length)s tegn, over 78; mange "
                    "e-postprogrammer kutter det: «%(subject)s»",
                    language=language,
                    length=len(subject),
                    subject=subject,
                ),
            )
        )
    try:
        message = factory.build(recipients[0])
    except MessageError as e:
        unbuilt = Text("%(language)s: %(error)s", language=language, error=e.message)
        findings.append(error("message", language, unbuilt))
        return findings
    for part in attachments_in(message):
        findings.append(
            error(
                "attachment",
                language,
                Text(
                    "%(language)s: meldingen har et vedlegg eller en del som ikke er tekst "
                    "(%(part)s); varsel sender aldri vedlegg.",
                    language=language,
                    part=part,
                ),
            )
        )
    return findings


def _used_languages(db: Database, campaign_id: int) -> list[str]:
    # A delivery's language can differ from all its units' (an address shared by nynorsk and
    # foreign units gets bokmål), so both tables count.
    rows = db.query(
        "SELECT language FROM recipients WHERE campaign_id = ? "
        "UNION SELECT language FROM deliveries WHERE campaign_id = ?",
        (campaign_id, campaign_id),
    )
    return sorted({r[0] for r in rows})


def lint_campaign(
    db: Database, settings: Settings, campaign_id: int, *, actor: str | None = None
) -> LintReport:
    """Check a campaign before sending; the result is also recorded as a 'lint' event."""
    from varsel import audit

    campaign = get_campaign(db, campaign_id)
    spec = campaign.spec
    mspec = message_spec(campaign)
    findings, signer = _key_findings(settings, spec)
    for language in _used_languages(db, campaign_id):
        if language not in spec.templates:
            findings.append(
                error(
                    "missing-template",
                    language,
                    Text(
                        "Mottakere i kampanjen har språket «%(language)s», men kampanjen har "
                        "ingen mal på det språket.",
                        language=language,
                    ),
                )
            )
    findings += _definition_findings(
        spec, mspec, signer, lambda language: sample_units(db, campaign_id, language)
    )
    if not any(f.code == "message" and f.language is None for f in findings):
        findings += unit_findings(db, campaign_id, mspec, sample_code())
    if spec.reply_to is None:
        findings.append(
            warning(
                "no-reply-to",
                None,
                Text(
                    "Kampanjen har ingen svaradresse ([sender] reply_to): svar går til "
                    "%(address)s.",
                    address=spec.from_address,
                ),
            )
        )
    findings += _baseurl_findings(settings, spec)
    findings += _registry_age_findings(db)
    ordered = sorted(findings, key=lambda f: f.severity is not Severity.ERROR)
    report = LintReport(campaign_id, tuple(ordered))
    with db.transaction():
        outbox.record_event(
            db,
            campaign_id,
            None,
            "lint",
            {"ok": report.ok, "errors": report.errors, "warnings": report.warnings},
        )
        audit.record(
            db,
            actor or audit.SYSTEM,
            audit.Action.CAMPAIGN_LINT,
            f"campaign:{campaign_id}",
            {"ok": report.ok, "errors": report.errors, "warnings": report.warnings},
        )
    return report


def _baseurl_findings(settings: Settings, spec: CampaignSpec) -> list[Finding]:
    """A warning when the messages' verification address is not one this server answers."""
    base = settings.public_base_url.strip()
    if not base or under_base(spec.verify_url, base):
        return []
    # A warning, not an error: the authority's main site may pass that path on to this server.
    return [
        warning(
            "verify-url-base",
            None,
            Text(
                "Meldingene ber mottakerne skrive inn kontrolladressen %(url)s, men denne tjeneren "
                "har den offentlige adressen %(base)s (VARSEL_PUBLIC_BASE_URL). Blir ikke "
                "%(url)s sendt videre hit, kommer mottakeren til en side som ikke kan sjekke "
                "koden i meldingen. Rett [public] base_url i kampanjen, eller innstillingen.",
                url=spec.verify_url,
                base=base,
            ),
        )
    ]


def _registry_age_findings(db: Database) -> list[Finding]:
    """A warning when the registry's data is older than snapshot.STALE_DAYS (or undated)."""
    age = data_age(db)
    if age is None or not age.stale:
        return []
    # A warning, not an error: old data may be all the operator has, as campaign create says.
    return [
        warning(
            "registry-age",
            None,
            Text(STALE_WARNING, age=age.describe(), stale_days=STALE_DAYS),
        )
    ]


def _definition_findings(
    spec: CampaignSpec,
    mspec: MessageSpec,
    signer: Signer | None,
    samples: Callable[[str], tuple[UnitRef, UnitRef]],
) -> list[Finding]:
    """The templates' sources, then each language's messages rendered for samples(language)."""
    findings = template_findings(spec)
    # A template Jinja cannot read is not rendered: Jinja would only say the same in English.
    broken = {f.language for f in findings if f.code == "template"}
    # What is wrong outside the templates (an address, a URL) is wrong in every language:
    # a factory with trivial templates finds it once, before the languages are rendered.
    probe = dict.fromkeys(spec.templates, "{{ code }}")
    try:
        _LintFactory(
            dataclasses.replace(mspec, subjects=probe, text_templates=probe, html_templates=probe),
            None,
        )
    except MessageError as e:
        findings.append(error("message", None, Text("Kampanjen: %(error)s", error=e.message)))
        return findings
    code = sample_code()
    for language in sorted(spec.templates, key=_language_order):
        if language not in broken:
            units = samples(language)
            findings += _language_findings(units, spec, mspec, signer, language, code)
    return findings


def definition_findings(spec: CampaignSpec) -> list[Finding]:
    """What lint finds in a definition alone: no DKIM key, store or recipients are needed.

    The messages are rendered for made-up businesses, so that `campaign create` can refuse a
    definition that could never be sent before it freezes any recipient.
    """
    unsaved = Campaign(0, spec.name, CampaignStatus.READY, spec, 0, "")
    return _definition_findings(spec, message_spec(unsaved), None, lambda _: FALLBACK_UNITS)


def _language_order(language: str) -> tuple[int, str]:
    return (LANGUAGES.index(language) if language in LANGUAGES else len(LANGUAGES), language)
