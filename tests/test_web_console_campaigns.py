"""The console's campaign pages over HTTP (SQLite and PostgreSQL): the new-campaign form, the
template editor, the campaign page's actions and its progress panel."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from helpers import (
    approved_by_berit,
    console_settings,
    form_token,
    kari_campaign_berit_signed_in,
    page_form,
    sample_campaign,
    sign_in_as,
)
from varsel.accounts import get_user
from varsel.approval import approve
from varsel.campaign import CampaignStatus, get_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import Text
from varsel.registry import import_dump
from varsel.retention import forget_campaign
from varsel.web.console_auth import PREFIX, translate
from varsel.web.console_send import for_console

NEW = f"{PREFIX}/kampanjer/ny"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return console_settings(tmp_path, db_url)


def new_form(client: TestClient, **fields: str) -> dict[str, str]:
    """The new-campaign form for Oslo police district, filled in, with these fields changed."""
    return {
        "csrf": form_token(client, f"{NEW}?politi=oslo"),
        "politi": "oslo",
        "name": "Råd",
        "from_address": "sikkerhet@nsr-org.no",
        "from_name": "NSR",
        "organisation": "NSR",
        "document_title": "Råd",
        "document_url": "https://www.politiet.no/rad.pdf",
        "public_base_url": "https://www.politiet.no/varsel",
        **fields,
    }


def field_error(answer: httpx.Response, field: str) -> str:
    """The message shown at a field, which the field names in its aria-describedby."""
    hidden = '<span class="visually-hidden">[^<]+</span>'
    found = re.search(rf'<p class="error" id="{field}-feil">{hidden}([^<]+)</p>', answer.text)
    assert found is not None, answer.text
    described = re.search(rf'id="{field}"[^>]*aria-describedby="([^"]+)"', answer.text)
    assert described is not None
    assert f"{field}-feil" in described.group(1).split()
    return found.group(1).replace("&#39;", "'")


def campaigns(db: Database) -> int:
    return int(db.scalar("SELECT count(*) FROM campaigns") or 0)


# -- the new-campaign form ----------------------------------------------------------------------


def test_a_name_over_the_limit_is_refused_at_its_field_and_kept_as_typed(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    name = "R" * 400
    answer = client.post(NEW, data=new_form(client, name=name))
    assert answer.status_code == 400
    assert (
        field_error(answer, "name") == "«Navn på kampanjen» kan ha høyst 300 tegn; her er det 400."
    )
    assert f'value="{name}"' in answer.text
    assert campaigns(db) == 1


def test_a_missing_name_and_an_http_address_are_named_by_the_forms_labels(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    empty = client.post(NEW, data=new_form(client, name=""))
    assert empty.status_code == 400
    assert field_error(empty, "name") == "Fyll inn «Navn på kampanjen»."
    http = {"document_url": "http://www.politiet.no/rad.pdf"}
    shown = {
        lang: field_error(client.post(NEW, data={**new_form(client, **http), "lang": lang}), f)
        for lang, f in (("nb", "document_url"), ("en", "document_url"))
    }
    assert shown == {
        "nb": "Dokumentets adresse (https): «http://www.politiet.no/rad.pdf» må være en "
        "https-adresse",
        "en": "Address of the document (https): “http://www.politiet.no/rad.pdf” must be an "
        "https address",
    }
    answer = client.post(NEW, data=new_form(client, from_address="sikkerhet.nsr-org.no"))
    assert field_error(answer, "from_address") == (
        "Avsenderadresse: «sikkerhet.nsr-org.no» er ikke en brukbar e-postadresse (mangler @)"
    )
    assert "[sender]" not in answer.text
    assert 'value="sikkerhet.nsr-org.no"' in answer.text
    assert campaigns(db) == 1


def test_the_form_says_which_campaign_the_sender_is_carried_over_from(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    sign_in_as(client, db, settings, "ola", "author")
    assert "hentet fra kampanje" not in client.get(f"{NEW}?politi=oslo").text
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    page = client.get(f"{NEW}?politi=oslo").text
    assert (
        f"Avsender og dokument er hentet fra kampanje {cid}, den nyeste. Se over dem før du lager "
        "kampanjen."
    ) in page
    assert 'value="sikkerhet@nsr-org.no"' in page


# -- the template editor ---------------------------------------------------------------------


def test_a_template_over_the_limit_is_refused_kept_whole_and_nothing_is_saved(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    before = get_campaign(db, cid).spec
    csrf = form_token(client, f"{PREFIX}/kampanjer/{cid}/maler")
    text = "Hei\n" + "x" * 30_000
    shown = {}
    for lang in ("nb", "en"):
        answer = client.post(
            f"{PREFIX}/kampanjer/{cid}/maler",
            data={"csrf": csrf, "lang": lang, "action": "save", "nn-text": text},
        )
        assert answer.status_code == 400
        assert "Malene er lagret" not in answer.text
        assert f">{text}</textarea>" in answer.text
        shown[lang] = field_error(answer, "nn-text")
    assert shown == {
        "nb": "Tekst (nn) har 30\xa0004 tegn; en mal kan ha høyst 30\xa0000. Ingenting er lagret.",
        "en": "Text (nn) has 30\xa0004 characters; a template can have at most 30\xa0000. "
        "Nothing was saved.",
    }
    assert get_campaign(db, cid).spec == before


def test_templates_in_norwegian_letters_up_to_the_limit_reach_the_editor_not_the_413(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    # URL-encoded, an æ is six bytes: nine full templates are ~1.6 MB, far over the public
    # pages' 64 KiB, and a 413 page would lose everything typed.
    from varsel.web import MAX_TEMPLATES_BODY
    from varsel.web.console_editor import MAX_TEMPLATE

    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    before = get_campaign(db, cid).spec
    url = f"{PREFIX}/kampanjer/{cid}/maler"
    csrf = form_token(client, url)
    full = "æøå" * (MAX_TEMPLATE // 3)
    fields = {f"{lang}-{part}": full for lang in ("nb", "nn", "en") for part in ("text", "html")}
    fields["en-html"] += "å"  # one over
    data = {"csrf": csrf, "action": "save", **fields}
    assert 6 * MAX_TEMPLATE * 9 < MAX_TEMPLATES_BODY  # subjects are shorter still

    answer = client.post(url, data=data)

    assert answer.status_code == 400
    assert field_error(answer, "en-html") == (
        "HTML (en) har 30\xa0001 tegn; en mal kan ha høyst 30\xa0000. Ingenting er lagret."
    )
    assert answer.text.count(f">{full}</textarea>") == 5  # what was typed, kept
    assert get_campaign(db, cid).spec == before
    # Past that, the editor's path too gets the 413 page, its body unread.
    huge = client.post(url, data={**data, "nb-text": "x" * MAX_TEMPLATES_BODY})
    assert huge.status_code == 413


def test_one_lint_error_is_one_error_in_english(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    csrf = form_token(client, f"{PREFIX}/kampanjer/{cid}/maler")
    nn = get_campaign(db, cid).spec.templates["nn"]
    text = nn.text + "\nLes meir: https://bit.ly/3xYz\n"
    # Both parts the campaign's own (lint wants text and HTML to say the same), one finding.
    html = nn.html.replace("</body>", "<p>Les meir.</p></body>")
    answer = client.post(
        f"{PREFIX}/kampanjer/{cid}/maler",
        data={"csrf": csrf, "lang": "en", "action": "save", "nn-text": text, "nn-html": html},
    )
    assert answer.status_code == 200
    assert "1 error must be fixed before the campaign can be approved." in answer.text


# -- the campaign page -------------------------------------------------------------------------


def test_send_is_offered_only_once_approved_and_an_unapproved_send_points_at_the_page(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    page = client.get(f"{PREFIX}/kampanjer/{cid}").text
    assert f"/kampanjer/{cid}/send" not in page
    assert "varsel campaign send" not in page  # nor the command line's way to send it
    assert "«Send kampanjen» vises når en godkjenner som ikke skrev kampanjen" in page
    answer = client.post(
        f"{PREFIX}/kampanjer/{cid}/send", data=page_form(client, f"{PREFIX}/kampanjer/{cid}")
    )
    assert answer.status_code == 409
    assert "Godkjenning (fire øyne)» på denne siden" in answer.text
    assert "varsel campaign approve" not in answer.text
    berit = get_user(db, "berit")
    assert berit is not None
    approve(db, settings, cid, berit)
    assert f"/kampanjer/{cid}/send" in client.get(f"{PREFIX}/kampanjer/{cid}").text


def test_a_campaign_that_is_not_sending_cannot_be_paused(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    form = page_form(client, f"{PREFIX}/kampanjer/{cid}")
    assert f"/kampanjer/{cid}/pause" not in client.get(f"{PREFIX}/kampanjer/{cid}").text
    answer = client.post(f"{PREFIX}/kampanjer/{cid}/pause", data=form)
    assert answer.status_code == 409
    assert 'id="handling-feil">Kampanjen kan bare pauses mens den sendes.</p>' in answer.text
    assert get_campaign(db, cid).status is CampaignStatus.READY


def emails(db: Database, cid: int) -> int:
    return int(
        db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'email'", (cid,)
        )
        or 0
    )


def test_cancel_needs_the_box_ticked_and_then_says_none_were_sent(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    form = page_form(client, f"{PREFIX}/kampanjer/{cid}")
    assert (
        "Jeg forstår at kampanjen ikke kan sendes igjen"
        in client.get(f"{PREFIX}/kampanjer/{cid}").text
    )
    refused = client.post(f"{PREFIX}/kampanjer/{cid}/avbryt", data=form)
    assert refused.status_code == 400
    assert "Kryss av for at du forstår at kampanjen ikke kan sendes igjen" in refused.text
    assert get_campaign(db, cid).status is CampaignStatus.READY
    done = client.post(f"{PREFIX}/kampanjer/{cid}/avbryt", data={**form, "bekreft": "ja"})
    assert done.status_code == 200  # followed to the campaign page
    assert get_campaign(db, cid).status is CampaignStatus.CANCELLED
    n = emails(db, cid)
    assert f"0 av {n} e-poster ble sendt; {n} ble ikke sendt (avbrutt)." in done.text
    assert "e-poster er ferdige" not in done.text


def test_the_progress_panel_counts_the_emails_being_sent(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET state = 'claimed' WHERE id = (SELECT min(id) FROM deliveries "
            "WHERE campaign_id = ? AND channel = 'email')",
            (cid,),
        )
    panel = client.get(f"{PREFIX}/kampanjer/{cid}/fremdrift").text
    assert '<div class="count count-claimed"><dt>Under sending</dt><dd>1</dd></div>' in panel


def test_in_doubt_emails_are_listed_on_the_page_with_where_to_settle_them(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    [(did, address)] = db.query(
        "SELECT id, address FROM deliveries WHERE campaign_id = ? AND channel = 'email' "
        "ORDER BY id LIMIT 1",
        (cid,),
    )
    with db.transaction():
        db.execute("UPDATE deliveries SET state = 'in_doubt' WHERE id = ?", (did,))
    page = client.get(f"{PREFIX}/kampanjer/{cid}").text
    assert '<h2 id="usikre">Usikre e-poster</h2>' in page
    assert f"<tr><td>{did}</td><td>{address}</td>" in page
    assert f"«varsel campaign resend-in-doubt {cid}»" in page
    assert "Se listen «Usikre e-poster» på kampanjesiden." in page
    assert "varsel campaign status" not in page


def test_a_forgotten_campaign_says_so_and_offers_nothing(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = approved_by_berit(client, db, settings, tmp_path, brreg)
    with db.transaction():
        db.execute("UPDATE deliveries SET state = 'sent' WHERE campaign_id = ?", (cid,))
        db.execute("UPDATE campaigns SET status = 'done' WHERE id = ?", (cid,))
    forget_campaign(db, cid, actor="berit")
    page = client.get(f"{PREFIX}/kampanjer/{cid}").text
    assert (
        '<span class="status status-done">Ferdig</span> / '
        '<span class="status status-forgotten">glemt</span>'
    ) in page
    assert "Kampanjens kontaktopplysninger ble glemt " in page
    assert "gjelder ikke lenger" not in page
    assert "varsel campaign send" not in page
    assert f"/kampanjer/{cid}/send" not in page
    dashboard = client.get(PREFIX).text
    assert (
        '<td><span class="status status-done">Ferdig</span> / '
        '<span class="status status-forgotten">glemt</span></td>'
    ) in dashboard


def test_a_relay_failure_points_at_the_send_button_not_the_command_line() -> None:
    failed = Text(
        "e-posttjeneren %(relay)s kan ikke brukes: %(reason)s (%(tries)s forsøk); "
        "leveransene som gjenstår, venter i køen til neste «campaign send»",
        relay="smtp.example:587",
        reason="tidsavbrudd",
        tries=3,
    )
    assert for_console(failed) == (
        "e-posttjeneren smtp.example:587 kan ikke brukes: tidsavbrudd (3 forsøk); e-postene som "
        "gjenstår, venter i køen til kampanjen sendes igjen med «Send kampanjen»"
    )
    assert translate("en", for_console(failed)).endswith(
        "wait in the queue until the campaign is sent again with “Send the campaign”"
    )
    assert for_console("annet") == "annet"


# -- why deliveries failed --------------------------------------------------------------------


def test_failed_deliveries_are_grouped_by_reason_without_their_addresses(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    from varsel.altinn_client import failure_text

    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    assert "Hvorfor leveranser feilet" not in client.get(f"{PREFIX}/kampanjer/{cid}").text
    emails = [
        r[0]
        for r in db.query(
            "SELECT id FROM deliveries WHERE campaign_id = ? AND channel = 'email' ORDER BY id",
            (cid,),
        )
    ]
    assert len(emails) >= 5
    replies = [
        ("failed", "550 5.1.1 <ola.nordmann@example.no>: User unknown"),
        ("failed", "550 5.1.1 <kari@example.no>: User unknown"),
        ("bounced", "5.2.2 mailbox full"),
    ]
    with db.transaction():
        for did, (state, reply) in zip(emails, replies, strict=False):
            db.execute(
                "UPDATE deliveries SET state = ?, last_reply = ? WHERE id = ?", (state, reply, did)
            )
        # Two more as Altinn messages the recipients reserved themselves against.
        for did, orgnr in zip(emails[3:5], ("974760673", "912345678"), strict=True):
            db.execute(
                "UPDATE deliveries SET channel = 'altinn', key = ?, address = ?, "
                "state = 'failed', last_reply = 'Reserved' WHERE id = ?",
                (orgnr, orgnr, did),
            )
    page = " ".join(client.get(f"{PREFIX}/kampanjer/{cid}").text.split())
    assert '<h2 id="feilet">Hvorfor leveranser feilet</h2>' in page
    assert "<caption>E-post: 3 feilet eller i retur</caption>" in page
    # The two refusals differ only in the address, which is not shown: one reason, twice.
    assert (
        '<tr><td>Feilet</td><td class="number">2</td><td>550 5.1.1 &lt;(adresse)&gt;: User '
        "unknown</td></tr>"
    ) in page
    assert '<tr><td>I retur</td><td class="number">1</td><td>5.2.2 mailbox full</td></tr>' in page
    assert "ola.nordmann@example.no" not in page
    assert "kari@example.no" not in page
    units = "912345678, 974760673"
    assert "<caption>Altinn: 2 feilet</caption>" in page
    assert (
        f'<tr><td class="number">2</td><td>{failure_text("Reserved")}</td><td>{units}</td></tr>'
    ) in page

    english = " ".join(client.get(f"{PREFIX}/kampanjer/{cid}?lang=en").text.split())
    assert '<h2 id="feilet">Why deliveries failed</h2>' in english
    assert "<caption>E-mail: 3 failed or bounced</caption>" in english
    assert "550 5.1.1 &lt;(address)&gt;: User unknown" in english
    assert f"<td>{translate('en', failure_text('Reserved'))}</td>" in english


def test_the_new_campaign_form_warns_about_old_registry_data_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings
) -> None:
    from datetime import date

    from varsel.clock import utcnow_iso
    from varsel.snapshot import norway_today

    sign_in_as(client, db, settings, "ola", "author")
    assert 'id="gamle-data"' not in client.get(f"{NEW}?politi=oslo").text
    db.execute(
        "INSERT INTO snapshots (kind, source, file_name, file_path, sha256, format, dump_date, "
        "imported_at, records) VALUES ('enheter', 'dump', 'e.json', '/tmp/e.json', 'x', "
        "'json', '2025-12-15', ?, 10)",
        (utcnow_iso(),),
    )
    days = (norway_today() - date(2025, 12, 15)).days
    page = " ".join(client.get(f"{NEW}?politi=oslo").text.split())
    assert (
        '<p class="warning-text" role="status" id="gamle-data">Lageret har registerdata fra '
        f"2025-12-15 (dumpdato), {days} dager gamle, eldre enn 7 dager;"
    ) in page
    english = " ".join(client.get(f"{NEW}?politi=oslo&lang=en").text.split())
    assert (
        f"The store holds registry data as of 2025-12-15 (dump date), {days} days old, older "
        "than 7 days; fetch the changes since with “varsel registry update --fetch”"
    ) in english


# -- letters and Altinn in the progress panel and the failures ----------------------------------


def _as_other_channel(db: Database, ids: list[int], channel: str, states: list[tuple]) -> None:
    """Turn e-mail deliveries into letters or Altinn messages in these (state, reason)s."""
    with db.transaction():
        for n, (did, (state, reason)) in enumerate(zip(ids, states, strict=False)):
            orgnr = f"9{channel[0] == 'l':01}{n:07}"
            db.execute(
                "UPDATE deliveries SET channel = ?, key = ?, address = ?, state = ?, "
                "last_reply = ? WHERE id = ?",
                (channel, orgnr, orgnr, state, reason, did),
            )


def test_the_progress_panel_shows_letters_and_altinn_and_counts_bounced_emails_as_sent(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    panel = " ".join(client.get(f"{PREFIX}/kampanjer/{cid}/fremdrift").text.split())
    # No letters or Altinn messages: nothing shown for them.
    assert "Brev" not in panel
    assert "Altinn" not in panel
    ids = [
        r[0]
        for r in db.query("SELECT id FROM deliveries WHERE campaign_id = ? ORDER BY id", (cid,))
    ]
    assert len(ids) == 6
    _as_other_channel(
        db, ids[2:5], "letter", [("posted", None), ("returned", "Flyttet"), ("produced", None)]
    )
    _as_other_channel(db, ids[5:], "altinn", [("delivered", None)])
    with db.transaction():
        db.execute("UPDATE deliveries SET state = 'sent' WHERE id = ?", (ids[0],))
        db.execute("UPDATE deliveries SET state = 'bounced' WHERE id = ?", (ids[1],))
    for path in (f"{PREFIX}/kampanjer/{cid}/fremdrift", f"{PREFIX}/kampanjer/{cid}"):
        panel = " ".join(client.get(path).text.split())
        # The bounced e-mail went out: «Sendt» counts it, and says how many came back.
        assert '<div class="count count-sent"><dt>Sendt</dt><dd>2</dd></div>' in panel
        assert '<div class="count count-bounced"><dt>Av dem i retur</dt><dd>1</dd></div>' in panel
        assert '<h3 id="fremdrift-email">E-post (2)</h3>' in panel
        assert '<h3 id="fremdrift-letter">Brev (3)</h3>' in panel
        assert '<h3 id="fremdrift-altinn">Altinn (1)</h3>' in panel
        letters = panel.split('<dl class="counts channel-letter"')[1].split("</dl>")[0]
        assert re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", letters) == [
            ("Produsert", "1"),
            ("Postlagt", "1"),
            ("Returnert", "1"),
            ("Feilet", "0"),
        ]
        altinn = panel.split('<dl class="counts channel-altinn"')[1].split("</dl>")[0]
        assert re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", altinn) == [
            ("Sendt inn", "0"),
            ("Levert", "1"),
            ("Feilet", "0"),
        ]
    english = " ".join(client.get(f"{PREFIX}/kampanjer/{cid}/fremdrift?lang=en").text.split())
    assert '<h3 id="fremdrift-letter">Letter (3)</h3>' in english
    assert "<dt>Posted</dt><dd>1</dd>" in english
    assert "<dt>Submitted</dt><dd>0</dd>" in english
    assert "<dt>Of which bounced</dt><dd>1</dd>" in english
    nynorsk = " ".join(client.get(f"{PREFIX}/kampanjer/{cid}/fremdrift?lang=nn").text.split())
    assert "<dt>Postlagd</dt><dd>1</dd>" in nynorsk


def test_letters_failed_and_returned_are_grouped_by_reason(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    ids = [
        r[0]
        for r in db.query("SELECT id FROM deliveries WHERE campaign_id = ? ORDER BY id", (cid,))
    ]
    _as_other_channel(
        db,
        ids[:5],
        "letter",
        [
            ("returned", "Adressaten er ukjent"),
            ("returned", "Adressaten er ukjent"),
            ("returned", "Flyttet"),
            ("failed", "incomplete_address"),
            ("posted", None),
        ],
    )
    page = " ".join(client.get(f"{PREFIX}/kampanjer/{cid}").text.split())
    assert "<caption>Brev: 4 feilet eller returnert</caption>" in page
    table = page.split("<caption>Brev: 4 feilet eller returnert</caption>")[1].split("</table>")[0]
    rows = re.findall(r'<tr><td>([^<]+)</td><td class="number">(\d+)</td><td>([^<]+)</td>', table)
    # Why a letter was not made, as `varsel letters` words its code; why one came back, in the
    # print house's words.
    assert rows == [
        ("Feilet", "1", "adressen mangler gyldig postnummer eller poststed"),
        ("Returnert", "2", "Adressaten er ukjent"),
        ("Returnert", "1", "Flyttet"),
    ]
    assert "E-post:" not in page.split("Hvorfor leveranser feilet")[1].split("</section>")[0]
    english = " ".join(client.get(f"{PREFIX}/kampanjer/{cid}?lang=en").text.split())
    assert "<caption>Letters: 4 failed or returned</caption>" in english
    why = "the address lacks a valid postcode or city"
    assert f'<td>Failed</td><td class="number">1</td><td>{why}</td>' in english
    assert '<td>Returned</td><td class="number">2</td><td>Adressaten er ukjent</td>' in english


def test_the_campaign_page_shows_the_send_window_and_when_a_shut_one_opens(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from test_web_public import CAMPAIGN
    from varsel.campaign import create_campaign
    from varsel.registry import import_dump
    from varsel.send_window import WINDOW_DAYS

    # Open only on tomorrow's weekday: shut today, open tomorrow at 09:15 (Oslo).
    tomorrow = (dt.datetime.now(ZoneInfo("Europe/Oslo")) + dt.timedelta(days=1)).date()
    day = WINDOW_DAYS[tomorrow.weekday()]
    window = f'[window]\ndays = ["{day}"]\nstart = "09:15"\nend = "15:30"\n'
    import_dump(db, brreg / "enheter-sample.json")
    (tmp_path / "rad.pdf").write_bytes(b"%PDF-1.4\n")
    (tmp_path / "c.toml").write_text(CAMPAIGN + window, "utf-8")
    cid = create_campaign(db, settings, tmp_path / "c.toml", created_by="kari").campaign.id
    (tmp_path / "open.toml").write_text(CAMPAIGN, "utf-8")
    plain = create_campaign(db, settings, tmp_path / "open.toml", created_by="kari").campaign.id
    sign_in_as(client, db, settings, "berit", "approver")

    def page(language: str) -> str:
        return " ".join(client.get(f"{PREFIX}/kampanjer/{cid}?lang={language}").text.split())

    nb_day = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
    en_day = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    months = ("januar", "februar", "mars", "april", "mai", "juni", "juli", "august")
    months += ("september", "oktober", "november", "desember")
    opens = f"{tomorrow.day}. {months[tomorrow.month - 1]} {tomorrow.year} kl. 09.15"
    nb, en = page("nb"), page("en")
    weekday = tomorrow.weekday()
    assert f"<dt>Sendevindu</dt><dd>{nb_day[weekday]} kl. 09.15–15.30 (Europe/Oslo)<br>" in nb
    assert f"Stengt nå: en sending venter til {opens}." in nb
    assert f"<dt>Send window</dt><dd>{en_day[weekday]}, 09:15–15:30 (Europe/Oslo)<br>" in en
    assert "Closed now: a send waits until " in en
    assert "<dt>Sendevindauge</dt>" in page("nn")
    assert "Sendevindu" not in client.get(f"{PREFIX}/kampanjer/{plain}").text  # no window


def test_a_send_window_is_named_by_its_days_in_the_pages_language() -> None:
    from varsel.campaign_spec import Limits
    from varsel.web.console_text import send_window

    def days(language: str, *picked: str) -> str:
        words = send_window(Limits(window_days=picked, window_start="08:00"), language)
        assert words is not None
        return words.days

    assert days("nb", "mon", "tue", "wed", "thu", "fri") == "mandag–fredag"
    assert days("nn", "mon", "tue", "wed", "thu", "fri") == "måndag–fredag"
    assert days("en", "sat", "sun") == "Saturday, Sunday"
    assert days("nb", "mon", "wed", "fri") == "mandag, onsdag, fredag"
    assert days("nb") == days("nb", *("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    assert days("nb") == "alle dager"
    assert days("en") == "every day"
    assert send_window(Limits(), "nb") is None


# -- a NUL in free text: PostgreSQL's text cannot hold one --------------------------------------


@pytest.mark.parametrize(
    ("field", "label"),
    [
        ("name", "Navn på kampanjen"),
        ("from_name", "Avsendernavn"),
        ("organisation", "Organisasjon"),
        ("document_title", "Dokumentets tittel"),
    ],
)
def test_a_nul_in_a_text_field_of_the_new_campaign_is_refused_at_the_field(
    client: TestClient, db: Database, settings: Settings, brreg: Path, field: str, label: str
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    sign_in_as(client, db, settings, "kari", "author")
    answer = client.post(NEW, data=new_form(client, **{field: "Råd\x00 om svindel"}))
    assert answer.status_code == 400
    assert field_error(answer, field) == (
        f"«{label}» har et NUL-tegn (\\u0000), som ikke kan lagres; skriv teksten uten det."
    )
    assert db.scalar("SELECT count(*) FROM campaigns") == 0


def test_a_nul_in_a_template_is_refused_at_its_field_and_nothing_is_saved(
    client: TestClient, db: Database, settings: Settings, brreg: Path, tmp_path: Path
) -> None:
    cid = sample_campaign(db, brreg, tmp_path)
    sign_in_as(client, db, settings, "kari", "author")
    before = get_campaign(db, cid).spec.templates
    csrf = form_token(client, f"{PREFIX}/kampanjer/{cid}/maler")
    answer = client.post(
        f"{PREFIX}/kampanjer/{cid}/maler",
        data={
            "csrf": csrf,
            "action": "save",
            "nn-text": "Hei\x00 {{ namn }}",
            "en-subject": "A\x00",
        },
    )
    assert answer.status_code == 400
    assert field_error(answer, "nn-text") == (
        "Tekst (nn) har et NUL-tegn (\\u0000), som ingen e-post kan ha. Ingenting er lagret."
    )
    assert field_error(answer, "en-subject") == (
        "Emne (en) har et NUL-tegn (\\u0000), som ingen e-post kan ha. Ingenting er lagret."
    )
    assert get_campaign(db, cid).spec.templates == before
