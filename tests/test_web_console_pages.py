"""The console's general pages over HTTP: language links after a form, the accounts page's
post-redirect-get, error pages, the audit log's words, counts and dates (SQLite and PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import HTTPS, console_settings, form_token, heading, operator, sign_in_as
from varsel import audit
from varsel.accounts import get_user
from varsel.config import Settings
from varsel.db import Database
from varsel.suppression import SuppressionKind, SuppressionReason, add, add_manual
from varsel.web import create_app
from varsel.web.console_auth import PREFIX


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return console_settings(tmp_path, db_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    # Its own: a server error is answered with the error page, not raised in the test.
    with TestClient(create_app(settings), base_url=HTTPS, raise_server_exceptions=False) as c:
        yield c


def language_links(html: str) -> dict[str, str]:
    """The page's links to itself in the other languages, by language."""
    found = re.findall(r'<a href="([^"]+)" lang="(\w\w)" hreflang', html)
    return {lang: href.replace("&amp;", "&") for href, lang in found}


def notice(html: str) -> str:
    found = re.search(r'<p class="notice" role="status">\s*(.+?)\s*</p>', html, re.S)
    assert found is not None, html
    return found.group(1)


# -- 1. after a form ---------------------------------------------------------------------


def test_after_a_refused_form_the_language_links_open_the_page_it_belongs_to(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    csrf = form_token(client, f"{PREFIX}/sperreliste")
    answer = client.post(
        f"{PREFIX}/sperreliste/fjern",
        data={"csrf": csrf, "kind": "address", "value": "ingen@firma.no", "lang": "en"},
    )
    assert answer.status_code == 400
    links = language_links(answer.text)
    assert links == {"nb": f"{PREFIX}/sperreliste", "nn": f"{PREFIX}/sperreliste?lang=nn"}
    assert client.get(links["nn"]).status_code == 200


def test_an_account_change_redirects_and_says_what_it_did(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "ada", "admin")
    operator(db, settings, "demo-kari", "author")
    csrf = form_token(client, f"{PREFIX}/brukere")
    said = {}
    for action, data in [
        ("deaktiver", {}),
        ("aktiver", {}),
        ("logg-ut-overalt", {}),
        ("rolle", {"role": "approver"}),
    ]:
        answer = client.post(
            f"{PREFIX}/brukere/demo-kari/{action}", data={"csrf": csrf, **data},
            follow_redirects=False,
        )  # fmt: skip
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"{PREFIX}/brukere?endret={action}&bruker=demo-kari"
        said[action] = notice(client.get(answer.headers["location"]).text)
    assert said == {
        "deaktiver": "demo-kari er deaktivert og logget ut på alle enheter.",
        "aktiver": "demo-kari er aktivert og kan logge inn igjen.",
        "logg-ut-overalt": "demo-kari er logget ut på alle enheter.",
        "rolle": "demo-kari har nå rollen Godkjenner.",
    }
    english = client.post(
        f"{PREFIX}/brukere/demo-kari/deaktiver", data={"csrf": csrf, "lang": "en"}
    )
    assert notice(english.text) == "demo-kari is disabled and signed out on every device."
    assert get_user(db, "demo-kari").disabled


def test_a_new_account_redirects_and_a_reload_does_not_post_again(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "ada", "admin")
    csrf = form_token(client, f"{PREFIX}/brukere")
    form = {"csrf": csrf, "name": "ola", "role": "author", "password": "et langt passord 1"}
    answer = client.post(f"{PREFIX}/brukere", data=form, follow_redirects=False)
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    assert notice(page.text).startswith("Kontoen «ola» er laget.")


def test_a_bad_address_says_why_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "ada", "admin")
    csrf = form_token(client, f"{PREFIX}/brukere")
    form = {"csrf": csrf, "name": "ola", "role": "author", "password": "et langt passord 1",
            "email": "ikke-epost"}  # fmt: skip
    shown = {
        lang: client.post(f"{PREFIX}/brukere", data={**form, "lang": lang}) for lang in ("nb", "en")
    }
    assert shown["nb"].status_code == 400
    assert "«ikke-epost» er ikke en brukbar e-postadresse (mangler @)" in shown["nb"].text
    assert "“ikke-epost” is not a usable e-mail address (@ is missing)" in shown["en"].text
    assert db.scalar("SELECT count(*) FROM users WHERE name = 'ola'") == 0


# -- 2. error pages ----------------------------------------------------------------------


def test_a_console_error_page_has_the_consoles_layout_and_a_way_back(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    missing = client.get(f"{PREFIX}/finnes-ikke?lang=en")
    assert missing.status_code == 404
    assert '<body class="console">' in missing.text
    assert '<ul class="menu">' in missing.text  # the operator's menu
    assert f'<a href="{PREFIX}?lang=en">To the overview</a>' in missing.text
    assert "Til forsiden" not in missing.text
    assert "To the front page" not in missing.text
    wrong_method = client.get(f"{PREFIX}/sperreliste/fjern")
    assert (wrong_method.status_code, heading(wrong_method.text)) == (405, "Det går ikke an")
    assert wrong_method.headers["allow"] == "POST"
    assert '<body class="console">' in wrong_method.text
    public = client.get("/finnes-ikke")
    assert public.status_code == 404
    assert '<body class="console">' not in public.text


def test_a_console_error_page_without_a_session_links_to_the_console(client: TestClient) -> None:
    answer = client.get(f"{PREFIX}/finnes-ikke")
    assert answer.status_code == 404
    assert f'<a href="{PREFIX}">Til konsollen</a>' in answer.text


def test_a_campaign_that_does_not_exist_is_404(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "vera", "viewer")
    answer = client.get(f"{PREFIX}/kampanjer/999")
    assert (answer.status_code, heading(answer.text)) == (404, "Siden finnes ikke")
    assert 'role="alert">kampanje 999 finnes ikke</p>' in answer.text


@pytest.mark.parametrize("tail", ["", "/maler", "/dekning"])
def test_a_campaign_number_no_store_can_hold_is_404_not_500(
    client: TestClient, db: Database, settings: Settings, tail: str
) -> None:
    sign_in_as(client, db, settings, "vera", "viewer")
    huge = "99999999999999999999"
    answer = client.get(f"{PREFIX}/kampanjer/{huge}{tail}")
    assert (answer.status_code, heading(answer.text)) == (404, "Siden finnes ikke")
    assert f'role="alert">kampanje {huge} finnes ikke</p>' in answer.text


# -- 3. words instead of code names ------------------------------------------------------


def test_the_audit_log_names_actions_in_words_and_shows_details_as_lines(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    operator(db, settings, "kari", "author")
    with db.transaction():
        audit.record(db, "berit", audit.Action.CAMPAIGN_SEND_END, "campaign:3",
                     {"sent": 49296, "stopped": True, "why": "ferdig"})  # fmt: skip
    page = client.get(f"{PREFIX}/logg?handling=campaign_send_end")
    assert '<option value="campaign_send_end" title="campaign_send_end" selected>Sending stoppet' \
        in page.text  # fmt: skip
    row = page.text.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "<td>Sending stoppet<br><small" in row
    assert ">campaign_send_end</small>" in row
    assert '<td class="detail">sent: 49\u00a0296<br>stopped: Ja<br>why: ferdig</td>' in row
    english = client.get(f"{PREFIX}/logg?handling=campaign_send_end&lang=en")
    assert "<td>Sending stopped<br>" in english.text
    assert "stopped: Yes" in english.text
    assert "{&#34;" not in page.text  # no JSON


def test_the_suppression_list_names_where_an_entry_came_from(
    client: TestClient, db: Database, settings: Settings
) -> None:
    add_manual(db, SuppressionKind.UNIT, "974760673", actor="cli:ola")
    add_manual(db, SuppressionKind.ADDRESS, "post@firma.no", actor="berit", source="console")
    # An entry from before the note had a column of its own (migration 0011).
    add_manual(db, SuppressionKind.ADDRESS, "post@gammel.no", actor="berit", source="operator")
    with db.transaction():
        add(db, SuppressionKind.ADDRESS, "a@b.no", SuppressionReason.UNSUBSCRIBED, "web:delivery:3")
    sign_in_as(client, db, settings, "berit", "approver")
    langs = ("nb", "nn", "en")
    cells = {lang: client.get(f"{PREFIX}/sperreliste?lang={lang}").text for lang in langs}
    # The same words (suppression.SOURCE_LABELS) as `varsel suppress list`, translated.
    assert "<td>konsollen</td>" in cells["nb"]
    assert "<td>kommandolinjen</td>" in cells["nb"]
    assert "<td>operatør</td>" in cells["nb"]
    assert "<td>kommandolinja</td>" in cells["nn"]
    assert "<td>operatør</td>" in cells["nn"]
    assert "<td>the console</td>" in cells["en"]
    assert "<td>the command line</td>" in cells["en"]
    assert "<td>operator</td>" in cells["en"]
    # What varsel itself put there names the delivery, in the page's language.
    assert "<td>avmelding på nettsiden (levering 3)</td>" in cells["nb"]
    assert "<td>avmelding på nettsida (levering 3)</td>" in cells["nn"]
    assert "<td>unsubscribed on the website (delivery 3)</td>" in cells["en"]


# -- 5. counts and dates ----------------------------------------------------------------


def test_the_dashboard_writes_counts_kinds_and_dates_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings
) -> None:
    db.execute(
        "INSERT INTO snapshots (kind, source, file_name, file_path, sha256, format, dump_date, "
        "imported_at, records) VALUES ('enheter', 'dump', 'e.json.gz', '/tmp/e.json.gz', 'x', "
        "'json', '2026-11-29', '2026-11-30T08:00:00Z', 224338)"
    )
    sign_in_as(client, db, settings, "vera", "viewer")
    pages = {lang: client.get(f"{PREFIX}?lang={lang}").text for lang in ("nb", "nn", "en")}
    rows = {
        lang: re.findall(r"<td[^>]*>([^<]*)</td>", text.rsplit("<h2>", 1)[1])[:6]
        for lang, text in pages.items()
    }
    assert rows["nb"][1:3] == ["Enheter", "29. november 2026"]
    assert rows["nn"][1:3] == ["Einingar", "29. november 2026"]
    assert rows["en"][1:4] == ["Main units", "29 November 2026", "30 November 2026, 09:00"]
    assert {lang: r[5] for lang, r in rows.items()} == dict.fromkeys(pages, "224\u00a0338")


def _snapshot(db: Database, source: str, dump_date: str, imported_at: str, guessed: bool) -> None:
    db.execute(
        "INSERT INTO snapshots (kind, source, file_name, file_path, sha256, format, dump_date, "
        "dump_date_guessed, imported_at, records) VALUES ('enheter', ?, 'e.json', '/tmp/e.json', "
        "?, 'json', ?, ?, ?, 10)",
        (source, f"sha-{dump_date}", dump_date, guessed, imported_at),
    )


def test_the_dashboard_dates_the_data_by_the_dump_not_the_import(
    client: TestClient, db: Database, settings: Settings
) -> None:
    from datetime import date

    from varsel.clock import utcnow_iso
    from varsel.snapshot import norway_today

    # The audit's case: a dump dated 15 December 2025 imported today is not «0 dager».
    _snapshot(db, "dump", "2025-12-15", utcnow_iso(), True)
    days = (norway_today() - date(2025, 12, 15)).days
    sign_in_as(client, db, settings, "vera", "viewer")
    text = " ".join(client.get(PREFIX).text.split())
    assert (
        '<p class="old">Enheter: data fra 15. desember 2025 (dumpdato, gjettet fra filens '
        f"endringstid), {days} dager <strong>(gammelt)</strong></p>"
    ) in text
    assert f"<td>{days} dager <strong>(gammelt)</strong></td>" in text
    assert "Eldre enn 7 dager er gammelt" in text

    # A change-feed page applied since dates the data by its newest entry, in every language.
    _snapshot(db, "feed", "2026-09-14", utcnow_iso(), False)
    days = (norway_today() - date(2026, 9, 14)).days
    pages = {
        lang: " ".join(client.get(f"{PREFIX}?lang={lang}").text.split())
        for lang in ("nb", "nn", "en")
    }
    assert (
        f"Enheter: data fra 14. september 2026 (nyeste endring fra endringsloggen), {days} dager"
    ) in pages["nb"]
    assert (
        f"Einingar: data frå 14. september 2026 (nyaste endring frå endringsloggen), {days} dagar"
    ) in pages["nn"]
    assert "data as of 14 September 2026 (newest change from the change feed)" in pages["en"]


# -- 4. the coverage page's numbers mean what the report's mean ---------------------------


def _facts(html: str) -> dict[str, tuple[str, str]]:
    """The rows of the coverage page's table of codes and the document: name → (n, unit)."""
    part = html.split("<caption>Kontrollkoder og dokumentet</caption>", 1)[1]
    part = part.split("</table>", 1)[0]
    rows = re.findall(
        r'<tr><th scope="row">(.+?)</th><td class="number">(.+?)</td><td>(.+?)</td></tr>', part
    )
    return {name: (n, unit) for name, n, unit in rows}


def test_the_coverage_page_counts_codes_as_the_report_does(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path
) -> None:
    from reportdata import (
        channel_delivery,
        check_code,
        email_deliveries,
        import_registry,
        new_campaign,
        send,
        settings_for,
        units_without_email,
    )
    from varsel import verify
    from varsel.outbox import DeliveryState, record_event

    import_registry(db, tmp_path, units=60, seed=3)
    cid = new_campaign(db, settings_for(tmp_path), tmp_path, "Dekning")
    send(db, settings_for(tmp_path), cid)
    first, second = email_deliveries(db, cid)[:2]
    check_code(db, first.code)
    check_code(db, first.code)  # a repeat: one business, two lookups
    letter = channel_delivery(
        db, cid, units_without_email(db, cid)[0], "letter", DeliveryState.POSTED
    )
    with db.transaction():
        record_event(db, cid, letter, "verify_ok")  # a letter's code: not an e-mail lookup
    found = verify.by_code(db, second.code)
    assert found is not None
    verify.unsubscribe(db, found, verify.UnsubscribeScope.ADDRESS, one_click=True)
    sign_in_as(client, db, settings, "vera", "viewer")
    facts = _facts(client.get(f"{PREFIX}/kampanjer/{cid}/dekning").text)
    assert facts == {
        "Sjekket koden, av dem som fikk e-posten": (str(len(first.units)), "virksomheter"),
        "Sjekket koden i brevet": ("1", "virksomheter"),
        "Lastet ned dokumentet": ("0", "virksomheter"),
        "Oppslag av koden fra e-posten": ("2", "oppslag"),
        "Oppslag av koder i alt, alle kanaler": ("3", "oppslag"),
        "Avmeldte seg": ("1", "e-poster"),
    }
    english = client.get(f"{PREFIX}/kampanjer/{cid}/dekning?lang=en").text
    assert '<tr><th scope="row">Lookups of the code from the e-mail</th>' in english
    assert "Oppslag i alt" not in english
