from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pypdf
import pytest
from babel.messages.pofile import read_po

from reportdata import (
    Sent,
    bounce,
    channel_delivery,
    check_code,
    download,
    email_deliveries,
    give_feedback,
    import_registry,
    new_campaign,
    send,
    set_state,
    settings_for,
    units_without_email,
)
from varsel import evaluate as evaluate_module
from varsel import verify
from varsel.coverage import PENDING_DETAILS, SIZE_BANDS, Outcome, Reason, label
from varsel.db import Database
from varsel.evaluate import Evaluation, Unsubscribes, bounce_reason, evaluate
from varsel.evaluate_render import ReportError, build_view, render_html, write_report
from varsel.evaluate_view import Paragraph, Table
from varsel.feedback import Channel
from varsel.i18n import fmt_int, fmt_share
from varsel.outbox import DeliveryState as S
from varsel.outbox import record_event
from varsel.web.templating import gettext as templating_gettext

CHROMIUM = Path("/usr/bin/chromium")
COMMENT = 'Nyttig! <script>alert("x")</script> & «takk»'


@dataclass(frozen=True)
class Scenario:
    campaign_id: int
    solo: list[Sent]  # sent e-mails, one unit each, whose unit has no other e-mail
    plain: list[str]  # units without e-mail


def solo_deliveries(db: Database, campaign_id: int) -> list[Sent]:
    sent = email_deliveries(db, campaign_id)
    per_unit: dict[str, int] = {}
    for d in sent:
        for u in d.units:
            per_unit[u] = per_unit.get(u, 0) + 1
    return [d for d in sent if len(d.units) == 1 and per_unit[d.units[0]] == 1]


def later() -> None:
    # The store keeps milliseconds: two facts recorded in the same one have no order.
    time.sleep(0.003)


@pytest.fixture
def scenario(db: Database, tmp_path: Path) -> Scenario:
    """A sent campaign, then what recipients did: checks, downloads, feedback, bounces."""
    settings = settings_for(tmp_path)
    import_registry(db, tmp_path, units=300, seed=5)
    cid = new_campaign(db, settings, tmp_path, "Sikkerhetsråd")
    send(db, settings, cid)
    solo = solo_deliveries(db, cid)
    plain = units_without_email(db, cid)
    bounce(db, solo[0], "5.1.1")
    bounce(db, solo[1], "5.1.1")
    bounce(db, solo[2], "", "complaint")
    bounce(db, solo[3], "4.2.2", "soft")
    bounce(db, solo[3], "", "auto_reply")
    set_state(db, solo[4].id, S.FAILED)
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET last_reply = '550 5.7.1 Rejected by policy' WHERE id = ?",
            (solo[4].id,),
        )
    # Checked, then downloaded: the safe order.
    for d in solo[5:8]:
        check_code(db, d.code)
    later()
    for d in solo[5:7]:
        download(db, cid, d.address)
    # Downloaded first, checked afterwards; and downloaded without checking.
    download(db, cid, solo[8].address)
    later()
    check_code(db, solo[8].code)
    download(db, cid, solo[9].address)
    # A second check of the same code counts once per unit.
    check_code(db, solo[5].code)
    give_feedback(db, cid, code=solo[5].code, usefulness=5, relevant=True, comment=COMMENT)
    give_feedback(db, cid, code=solo[6].code, usefulness=4, relevant=False, channel=Channel.LETTER)
    give_feedback(db, cid, usefulness=2, channel=Channel.ALTINN)
    channel_delivery(db, cid, plain[0], "letter", S.POSTED)
    channel_delivery(db, cid, plain[1], "letter", S.RETURNED)
    letter = channel_delivery(db, cid, plain[2], "letter", S.PRODUCED)
    channel_delivery(db, cid, plain[3], "altinn", S.DELIVERED)
    channel_delivery(db, cid, plain[4], "altinn", S.FAILED)
    set_state(db, letter, S.POSTED)
    with db.transaction():
        # What the verify page records for a letter's code (letter codes are genuine once
        # the letter is made).
        record_event(db, cid, letter, "verify_ok")
    return Scenario(cid, solo, plain)


@pytest.fixture
def ev(db: Database, scenario: Scenario) -> Evaluation:
    return evaluate(db, scenario.campaign_id)


def test_the_funnel_counts_units_at_each_step(db: Database, ev: Evaluation) -> None:
    cid = ev.campaign.id
    units = db.scalar("SELECT count(*) FROM recipients WHERE campaign_id = ?", (cid,))
    valid = db.scalar(
        "SELECT count(*) FROM recipients WHERE campaign_id = ? AND reach = 'email'", (cid,)
    )
    f = ev.funnel
    assert (f.selected, f.valid) == (units, valid)
    assert f.valid <= f.on_record <= f.selected
    # Every valid address got its e-mail accepted except the one refused for good.
    assert f.accepted == valid - 1
    assert (f.bounced, f.delivered) == (3, valid - 4)
    assert (f.verified, f.downloaded, f.feedback) == (4, 4, 2)


def test_letters_and_altinn_alongside(ev: Evaluation) -> None:
    lt, at = ev.letters, ev.altinn
    assert (lt.units, lt.sent, lt.arrived, lt.failed, lt.verified) == (3, 3, 2, 1, 1)
    assert (at.units, at.sent, at.arrived, at.failed, at.verified) == (2, 1, 1, 1, 0)


def test_altinn_messages_altinn_has_not_accepted_are_not_counted_as_sent(
    db: Database, scenario: Scenario
) -> None:
    cid = scenario.campaign_id
    # `altinn send --limit 1` plans every unit's message and sends one: the other waits.
    channel_delivery(db, cid, scenario.plain[5], "altinn", S.SUBMITTED)
    accepted = channel_delivery(db, cid, scenario.plain[6], "altinn", S.SUBMITTED)
    with db.transaction():
        db.execute("UPDATE deliveries SET message_id = 'c0ffee' WHERE id = ?", (accepted,))

    at = evaluate(db, cid).altinn

    assert (at.units, at.sent, at.arrived, at.pending) == (4, 2, 1, 1)


def test_an_altinn_message_accepted_and_then_failed_was_sent(
    db: Database, scenario: Scenario
) -> None:
    # Altinn took the message and then could not publish it (the organisation reserved itself
    # against digital messages): sent and failed, as a returned letter is sent and failed.
    cid = scenario.campaign_id
    refused = channel_delivery(db, cid, scenario.plain[5], "altinn", S.FAILED)
    with db.transaction():
        db.execute("UPDATE deliveries SET message_id = 'c0ffee' WHERE id = ?", (refused,))

    at = evaluate(db, cid).altinn

    assert (at.units, at.sent, at.arrived, at.failed, at.pending) == (3, 2, 1, 2, 0)


def test_code_checks_before_acting(ev: Evaluation) -> None:
    ch = ev.checks
    assert (ch.verified, ch.delivered) == (4, ev.funnel.delivered)
    assert (ch.downloaded_after_check, ch.downloaded) == (2, 4)
    assert (ch.answers_with_code, ch.answers) == (2, 3)
    assert (ch.lookups, ch.downloads) == (6, 4)
    # The letter's check is a lookup in all, not one of the e-mail codes.
    assert ch.email_lookups == 5


def test_feedback_scores_and_comments(ev: Evaluation) -> None:
    fb = ev.feedback
    assert dict(fb.scores) == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    assert fb.mean == pytest.approx(11 / 3)
    assert (fb.relevant_yes, fb.relevant_no) == (1, 1)
    assert dict(fb.channels) == {"epost": 0, "brev": 1, "altinn": 1, "sms": 0}
    assert [c.text for c in fb.comments] == [COMMENT]


def test_bounce_reasons_from_the_reports_and_the_refusals(ev: Evaluation) -> None:
    assert [(b.key, b.bounced, b.refused) for b in ev.bounces] == [
        ("mailbox", 2, 0),
        ("policy", 0, 1),
        ("complaint", 1, 0),
    ]
    # The full inbox (a soft bounce) left the e-mail sent: a delay, not a return.
    assert [(b.key, b.bounced, b.refused) for b in ev.delayed] == [("full", 1, 0)]
    assert ev.auto_replies == 1


@pytest.mark.parametrize(
    ("status", "key"),
    [
        ("5.1.1", "mailbox"),
        ("550 5.1.2 Host unknown", "domain"),
        ("5.2.2", "full"),
        ("552 5.7.1 Message refused by policy", "policy"),
        ("4.4.7", "temporary"),
        ("no status at all", "other"),
    ],
)
def test_bounce_reason_reads_the_enhanced_status(status: str, key: str) -> None:
    assert bounce_reason(status) == key


def test_the_summary_is_one_paragraph_in_norwegian(ev: Evaluation) -> None:
    c, f, ch = ev.coverage, ev.funnel, ev.checks
    email = c.outcomes[Outcome.EMAIL_ACCEPTED]
    assert build_view(ev).summary == (
        f"Kampanjen «Sikkerhetsråd» gikk til {fmt_int(c.units)} virksomheter i Oslo. "
        f"{fmt_int(f.valid)} av dem ({fmt_share(f.valid, c.units)}) hadde en brukbar "
        f"e-postadresse i Enhetsregisteret. E-posten ble levert til {fmt_int(email)} av dem, "
        "mens 3 kom i retur. 2 fikk brev i posten og 1 ble nådd gjennom Altinn. "
        f"Til sammen er {fmt_int(c.reached)} ({fmt_share(c.reached, c.units)}) nådd, "
        f"og {fmt_int(c.not_reached)} ({fmt_share(c.not_reached, c.units)}) er "
        f"ikke nådd. 4 av dem som fikk e-posten ({fmt_share(4, ch.delivered)}) sjekket "
        "kontrollkoden på nettsiden vår for å se at e-posten var ekte. 3 ga tilbakemelding; "
        "i snitt vurderte de nytten til 3,7 av 5."
    )


class Refs(HTMLParser):
    """Every tag and every attribute that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
                self.refs.append(f"{tag} {name}={value}")
            if name == "style" and value and "url(" in value:
                self.refs.append(f"{tag} style={value}")


def test_html_has_no_external_references(ev: Evaluation) -> None:
    html = render_html(build_view(ev))
    parser = Refs()
    parser.feed(html)
    assert parser.refs == []
    assert "script" not in parser.tags
    assert "link" not in parser.tags
    assert "url(" not in html
    assert "@import" not in html


def test_comments_are_shown_escaped(ev: Evaluation) -> None:
    html = render_html(build_view(ev))
    assert "Nyttig! &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; «takk»" in html
    assert "<script" not in html


def test_html_structure_is_accessible(ev: Evaluation) -> None:
    html = render_html(build_view(ev))
    parser = Refs()
    parser.feed(html)
    assert html.startswith('<!DOCTYPE html>\n<html lang="nb">')
    assert parser.tags.count("h1") == 1
    assert parser.tags.count("table") == parser.tags.count("caption")
    assert parser.tags.count("figure") == parser.tags.count("figcaption")
    assert parser.tags.count("svg") == parser.tags.count("figure")
    assert html.count('role="img" aria-label="') == parser.tags.count("svg")
    assert html.count('<th scope="col">') > 0


def test_compare_shows_two_campaigns_side_by_side(
    db: Database, scenario: Scenario, tmp_path: Path
) -> None:
    other = new_campaign(db, settings_for(tmp_path), tmp_path, "Neste runde")
    view = build_view(evaluate(db, scenario.campaign_id), evaluate(db, other))
    section = next(s for s in view.sections if s.id == "sammenligning")
    table = section.blocks[0]
    assert section.heading == f"Sammenlignet med kampanje {other}"
    assert table.head == (
        "",
        f"{scenario.campaign_id} «Sikkerhetsråd»",
        f"{other} «Neste runde»",
    )
    rows = {r[0]: r[1:] for r in table.rows}
    assert rows["Tilbakemeldinger"] == ("3", "0")
    assert rows["Nytte i snitt (1–5)"] == ("3,7", "–")


def test_compare_never_gives_the_reach_tables_label_another_meaning(
    db: Database, scenario: Scenario, tmp_path: Path
) -> None:
    # Three e-mails bounced; the letter that followed one of them was returned. «Hvem ble nådd»
    # counts «E-post i retur» as outcomes, of the businesses selected; the comparison showed
    # the funnel's bounces, of those accepted, under the same words.
    cid = scenario.campaign_id
    channel_delivery(db, cid, scenario.solo[0].units[0], "letter", S.POSTED)
    ev = evaluate(db, cid)
    other = new_campaign(db, settings_for(tmp_path), tmp_path, "Neste runde")
    view = build_view(ev, evaluate(db, other))
    reach = next(s for s in view.sections if s.id == "naadd")
    compare = next(s for s in view.sections if s.id == "sammenligning")
    outcomes = {r[0]: r[1:] for b in reach.blocks if isinstance(b, Table) for r in b.rows}
    compared = {r[0]: r[1] for b in compare.blocks if isinstance(b, Table) for r in b.rows}
    units, f = ev.coverage.units, ev.funnel
    assert (ev.coverage.outcomes[Outcome.EMAIL_BOUNCED], f.bounced) == (2, 3)
    assert outcomes["E-post i retur"] == ("2", fmt_share(2, units))
    assert "E-post i retur" not in compared
    assert compared["Kom i retur (av dem e-posttjenesten tok imot)"] == (
        f"3 ({fmt_share(3, f.accepted)})"
    )
    # The labels both sections share are the same numbers over the same denominator.
    for name in set(outcomes) & set(compared):
        assert compared[name] == f"{outcomes[name][0]} ({outcomes[name][1]})", name
    assert {"E-post levert", "Levert i Altinn"} <= set(compared)
    assert "Andelene er av de valgte virksomhetene" in " ".join(
        b.text for b in compare.blocks if isinstance(b, Paragraph)
    )


def test_writes_html_and_pdf(ev: Evaluation, tmp_path: Path) -> None:
    written = write_report(ev, tmp_path / "rapport.html", pdf=True)
    assert written == [tmp_path / "rapport.html", tmp_path / "rapport.pdf"]
    reader = pypdf.PdfReader(tmp_path / "rapport.pdf")
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Evaluering av kampanjen «Sikkerhetsråd»" in text
    assert "Sjekket mottakerne koden før de handlet?" in text
    assert 'Nyttig! <script>alert("x")</script>' in text
    fonts = [
        font.get_object() for page in reader.pages for font in page["/Resources"]["/Font"].values()
    ]
    assert fonts
    assert all(embedded(font) for font in fonts)


def embedded(font: Any) -> bool:
    """Whether a PDF font dictionary carries its font program."""
    if "/DescendantFonts" in font:
        font = font["/DescendantFonts"][0].get_object()
    descriptor = font["/FontDescriptor"].get_object()
    return any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def test_a_pdf_path_writes_only_the_pdf(ev: Evaluation, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert write_report(ev, out / "r.pdf") == [out / "r.pdf"]
    assert (out / "r.pdf").read_bytes().startswith(b"%PDF-")
    assert list(out.iterdir()) == [out / "r.pdf"]


def test_other_file_types_are_refused(ev: Evaluation, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"r\.docx: filen må slutte på \.html eller \.pdf$"):
        write_report(ev, tmp_path / "r.docx")


def test_an_existing_report_is_never_overwritten(ev: Evaluation, tmp_path: Path) -> None:
    # An operator's copy, annotated by hand: the new report must not replace it.
    out = tmp_path / "out"
    out.mkdir()
    (out / "rapport.html").write_text("<p>Mine merknader</p>", "utf-8")
    with pytest.raises(ReportError) as caught:
        write_report(ev, out / "rapport.html")
    assert str(caught.value) == f"{out / 'rapport.html'}: filen finnes allerede; velg et nytt navn"
    assert (out / "rapport.html").read_text("utf-8") == "<p>Mine merknader</p>"
    assert list(out.iterdir()) == [out / "rapport.html"]


def test_an_existing_pdf_twin_stops_the_html_too(ev: Evaluation, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "rapport.pdf").write_bytes(b"%PDF-1.7 annotert")
    with pytest.raises(ReportError, match=r"rapport\.pdf: filen finnes allerede; velg et nytt"):
        write_report(ev, out / "rapport.html", pdf=True)
    assert list(out.iterdir()) == [out / "rapport.pdf"]
    assert (out / "rapport.pdf").read_bytes() == b"%PDF-1.7 annotert"


def test_the_report_is_readable_by_its_owner_alone(ev: Evaluation, tmp_path: Path) -> None:
    # It holds recipients' comments, which may name people.
    out = tmp_path / "out"
    out.mkdir()
    old = os.umask(0o022)
    try:
        write_report(ev, out / "rapport.html", pdf=True)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes == {"rapport.html": 0o600, "rapport.pdf": 0o600}


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is installed by scripts/ensure-browser")
def test_chromium_opens_the_report_without_errors(ev: Evaluation, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    write_report(ev, tmp_path / "rapport.html")
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"error: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((tmp_path / "rapport.html").as_uri())
            headings = page.locator("h2").all_inner_texts()
            svg_boxes = [b for b in (s.bounding_box() for s in page.locator("svg").all()) if b]
        finally:
            browser.close()
    assert problems == []
    assert requests == [(tmp_path / "rapport.html").as_uri()]
    assert headings[:3] == ["Sammendrag", "Hvem ble nådd", "Fra utvalg til handling: e-post"]
    assert len(svg_boxes) == 5
    assert all(b["width"] > 300 and b["height"] > 20 for b in svg_boxes)


def _with_organisation(ev: Evaluation, organisation: str) -> Evaluation:
    spec = dataclasses.replace(ev.campaign.spec, organisation=organisation)
    return dataclasses.replace(ev, campaign=dataclasses.replace(ev.campaign, spec=spec))


@pytest.mark.parametrize(
    ("organisation", "words"),
    [
        ("Asker kommune", "stoler folk på en e-post fra Asker kommune uten å sjekke den?"),
        ("", "stoler folk på en e-post fra en offentlig avsender uten å sjekke den?"),
    ],
)
def test_the_code_section_names_the_campaigns_own_sender(
    ev: Evaluation, organisation: str, words: str
) -> None:
    html = render_html(build_view(_with_organisation(ev, organisation)))
    assert words in html
    assert "politiet" not in html


HEADINGS = {
    "nb": [
        "Sammendrag",
        "Hvem ble nådd",
        "Fra utvalg til handling: e-post",
        "Brev og Altinn",
        "Sjekket mottakerne koden før de handlet?",
        "Utfall per kommune",
        "Utfall etter antall ansatte",
        "Hvorfor e-post kom i retur",
        "Tilbakemeldinger",
        "Slik er tallene regnet",
    ],
    "nn": [
        "Samandrag",
        "Kven vart nådd",
        "Frå utval til handling: e-post",
        "Brev og Altinn",
        "Sjekka mottakarane koden før dei gjorde noko?",
        "Utfall per kommune",
        "Utfall etter talet på tilsette",
        "Kvifor e-post kom i retur",
        "Tilbakemeldingar",
        "Slik er tala rekna ut",
    ],
    "en": [
        "Summary",
        "Who was reached",
        "From selection to action: e-mail",
        "Letters and Altinn",
        "Did recipients check the code before acting?",
        "Outcome by municipality",
        "Outcome by number of employees",
        "Why e-mail bounced",
        "Feedback",
        "How the figures are calculated",
    ],
}


class Headings(HTMLParser):
    """The text of every h1 and h2, and the html element's lang."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.h1: list[str] = []
        self.h2: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        if tag in ("h1", "h2"):
            self._open = self.h1 if tag == "h1" else self.h2
            self._open.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2"):
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[-1] += data


@pytest.mark.parametrize("language", ["nb", "nn", "en"])
def test_the_report_is_written_in_its_language(ev: Evaluation, language: str) -> None:
    parser = Headings()
    parser.feed(render_html(build_view(ev, language=language)))
    assert parser.lang == language
    assert parser.h2 == HEADINGS[language]
    title = {
        "nb": "Evaluering av kampanjen «Sikkerhetsråd»",
        "nn": "Evaluering av kampanjen «Sikkerhetsråd»",
        "en": "Evaluation of the campaign “Sikkerhetsråd”",
    }
    assert parser.h1 == [title[language]]


@pytest.mark.parametrize("language", ["nn", "en"])
def test_no_bokmal_is_left_in_nynorsk_and_english(ev: Evaluation, language: str) -> None:
    html = render_html(build_view(ev, language=language))
    bokmal_only = set(HEADINGS["nb"]) - set(HEADINGS[language])
    assert [h for h in bokmal_only if h in html] == []
    for words in ("Virksomhet", "ikke nådd", "Andel", "Sjekket", "Hvorfor", "Laget av varsel"):
        assert words not in html


def test_english_numbers_and_dates(ev: Evaluation) -> None:
    view = build_view(ev, language="en")
    meta = dict(view.meta)
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}", meta["Created"])
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d", meta["Report produced"])
    units = ev.coverage.units
    reach = next(s for s in view.sections if s.id == "naadd")
    outcomes = reach.blocks[2]
    assert isinstance(outcomes, Table)
    assert outcomes.head == ("Outcome", "Businesses", "Share")
    assert outcomes.rows[-1] == ("Total", str(units), "100.0%")
    feedback = next(s for s in view.sections if s.id == "tilbakemelding")
    first = feedback.blocks[0]
    assert isinstance(first, Paragraph)
    assert first.text == (
        "Answers: 3. Usefulness was rated 3.7 out of 5 on average (3 gave a score). "
        "1 found the advice relevant to their business, 1 did not."
    )
    assert "in Oslo." in view.summary
    assert f"{fmt_share(ev.funnel.valid, units, 'en')})" in view.summary
    assert fmt_share(1, 3, "en") == "33.3%"


def test_norwegian_dates_in_nynorsk(ev: Evaluation) -> None:
    meta = dict(build_view(ev, language="nn").meta)
    assert re.fullmatch(r"\d{1,2}\. [a-z]+ \d{4}", meta["Oppretta"])
    assert re.fullmatch(r"\d{1,2}\. [a-z]+ \d{4} kl\. \d\d\.\d\d", meta["Rapporten er laga"])


def catalog(language: str) -> dict[str, str]:
    path = resources.files("varsel.web") / "locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        return {m.id: m.string for m in read_po(f) if isinstance(m.id, str) and m.id}


@pytest.mark.parametrize("language", ["nn", "en"])
def test_every_text_the_report_looks_up_is_translated(
    db: Database, scenario: Scenario, tmp_path: Path, language: str, monkeypatch: Any
) -> None:
    looked_up: set[str] = set()

    def recording(lang: str, text: str) -> str:
        looked_up.add(text)
        return templating_gettext(lang, text)

    monkeypatch.setattr("varsel.web.templating.gettext", recording)
    other = new_campaign(db, settings_for(tmp_path), tmp_path, "Neste runde")
    build_view(evaluate(db, scenario.campaign_id), evaluate(db, other), language)
    # Labels of outcomes, reasons, size bands and bounces the scenario may not reach.
    looked_up.update(str(label(k)) for k in (*Outcome, *Reason, *PENDING_DETAILS))
    looked_up.update(name for _, name in SIZE_BANDS)
    looked_up.update(evaluate_module._BOUNCE_LABELS.values())
    translations = catalog(language)
    assert len(looked_up) > 150
    assert sorted(t for t in looked_up if not translations.get(t)) == []


def test_a_pdf_in_nynorsk(ev: Evaluation, tmp_path: Path) -> None:
    write_report(ev, tmp_path / "rapport.pdf", language="nn")
    reader = pypdf.PdfReader(tmp_path / "rapport.pdf")
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Samandrag" in text
    assert "Sjekka mottakarane koden før dei gjorde noko?" in text
    assert f"Side 1 av {len(reader.pages)}" in text
    assert "Sammendrag" not in text


# -- one meaning per number (the numbers audit) ------------------------------------------


def _table(ev: Evaluation, caption: str) -> Table:
    for section in build_view(ev).sections:
        for block in section.blocks:
            if isinstance(block, Table) and block.caption == caption:
                return block
    raise AssertionError(f"no table {caption!r}")


def _paragraphs(ev: Evaluation, section_id: str, language: str = "nb") -> list[str]:
    (section,) = [s for s in build_view(ev, language=language).sections if s.id == section_id]
    return [b.text for b in section.blocks if isinstance(b, Paragraph)]


def test_returned_counts_only_bounced_e_mails_and_delays_are_told_apart(ev: Evaluation) -> None:
    table = _table(ev, "Årsaker til retur")
    assert table.head == ("Årsak", "E-poster i retur", "E-poster avvist", "Andel")
    assert [row[:3] for row in table.rows] == [
        ("Mottakeradressen finnes ikke", "2", "0"),
        ("Avvist av mottakerens regler (søppelpostfilter, sikkerhet)", "0", "1"),
        ("Mottakeren merket e-posten som søppelpost", "1", "0"),
    ]
    assert (
        "Midlertidig avvist, ikke i retur: 1 (innboksen er full: 1). Disse e-postene teller "
        "ikke med over: de ble levert senere eller står fortsatt som sendt."
    ) in _paragraphs(ev, "retur")


def test_a_soft_bounce_before_a_hard_one_counts_the_e_mail_once_as_returned(
    db: Database, scenario: Scenario
) -> None:
    bounce(db, scenario.solo[0], "4.2.2", "soft")
    ev = evaluate(db, scenario.campaign_id)
    assert [(b.key, b.bounced) for b in ev.bounces if b.bounced] == [
        ("mailbox", 2),
        ("complaint", 1),
    ]
    assert [(b.key, b.bounced) for b in ev.delayed] == [("full", 1)]


def test_the_code_section_tells_e_mail_lookups_from_all_lookups(ev: Evaluation) -> None:
    (last,) = _paragraphs(ev, "kode")[-1:]
    assert last.startswith(
        "Koden fra e-posten ble sjekket 5 ganger (gjentatte sjekker telles hver gang); med "
        "kodene fra brev og Altinn og svarene fra tilbakemeldingsskjemaet som bærer en kode, "
        "ble koder sjekket 6 ganger i alt."
    )


def test_the_summary_counts_the_letters_that_arrived_and_tells_those_not_yet_posted(
    db: Database, scenario: Scenario
) -> None:
    produced = channel_delivery(db, scenario.campaign_id, scenario.plain[5], "letter", S.PRODUCED)
    assert produced
    summary = build_view(evaluate(db, scenario.campaign_id)).summary
    # Two posted (the returned letter did not arrive), one made but not posted.
    assert "2 fikk brev i posten og 1 ble nådd gjennom Altinn. " in summary
    assert "1 har fått brevet laget, men det er ikke postlagt ennå. " in summary
    english = build_view(evaluate(db, scenario.campaign_id), language="en").summary
    assert "For 1, the letter has been produced but not posted yet." in english


def test_unsubscribes_are_counted_per_e_mail_with_their_scope(
    db: Database, scenario: Scenario
) -> None:
    a, b = scenario.solo[10], scenario.solo[11]
    found_a, found_b = verify.by_code(db, a.code), verify.by_code(db, b.code)
    assert found_a is not None
    assert found_b is not None
    verify.unsubscribe(db, found_a, verify.UnsubscribeScope.ADDRESS, one_click=True)
    # The same e-mail again (the page after the button): still one e-mail.
    verify.unsubscribe(db, found_a, verify.UnsubscribeScope.ADDRESS, one_click=False)
    verify.unsubscribe(db, found_b, verify.UnsubscribeScope.ORGANISATION, one_click=False)
    ev = evaluate(db, scenario.campaign_id)
    assert ev.unsubscribes == Unsubscribes(emails=2, address=1, organisation=1, one_click=1)
    rows = {row[0]: row[1:] for row in _table(ev, "Svar fra mottakerne").rows}
    assert rows == {
        "Tilbakemeldinger": ("3", "svar"),
        "Lastet ned dokumentet": ("4", "virksomheter"),
        "Avmeldte seg": (
            "2 (adressen: 1, virksomhetene: 1, med ett klikk: 1)",
            "e-poster",
        ),
        "Automatiske svar (fravær og lignende)": ("1", "svar"),
        "Midlertidig avvist, ikke i retur": ("1", "e-poster"),
    }


def test_the_responses_are_shown_before_any_feedback(db: Database, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    import_registry(db, tmp_path, units=40, seed=7)
    cid = new_campaign(db, settings, tmp_path, "Uten svar")
    send(db, settings, cid)
    ev = evaluate(db, cid)
    assert ev.unsubscribes == Unsubscribes(0, 0, 0, 0)
    rows = {row[0]: row[1] for row in _table(ev, "Svar fra mottakerne").rows}
    assert (rows["Tilbakemeldinger"], rows["Avmeldte seg"]) == ("0", "0")
