"""The console's gate over HTTP (Starlette's test client, on SQLite and PostgreSQL).

Roles on every route, CSRF on every write, sessions, sign-in with TOTP, lock-out, enrolment,
accounts, the audit log's filters and the suppression list. The browser story is in
test_web_console_browser.py.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from helpers import (
    HTTPS,
    PASSWORD,
    approved_by_berit,
    console_campaign,
    console_settings,
    form_token,
    heading,
    kari_campaign_berit_signed_in,
    next_code,
    operator,
    page_form,
    sample_campaign,
    sign_in,
    sign_in_as,
)
from varsel import audit
from varsel.accounts import Role, add_user, disable_user, get_user, list_users
from varsel.approval import fingerprint
from varsel.campaign import get_campaign, update_spec
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import N_, StoreError, StoreLost, Text, listed
from varsel.registry import import_dump
from varsel.signin import SignInError, confirm_totp
from varsel.suppression import (
    SuppressionKind,
    SuppressionReason,
    add,
    add_manual,
    entries,
    suppressed,
)
from varsel.web import create_app
from varsel.web.console_auth import OPEN, PREFIX, Console, ConsoleRoute, translate

COOKIE = "__Host-konsoll"
WRONG_PASSWORD = "feil passord 1"  # noqa: S105 -- not anyone's password
WRONG = (
    "Feil brukernavn, passord eller engangskode – eller kontoen er låst etter 5 feil på rad. "
    "En låst konto kan brukes igjen etter 15 minutter, eller når en administrator låser den opp."
)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return console_settings(tmp_path, db_url)


def cells(html: str) -> list[list[str]]:
    """The text of each body row's cells."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in body.split("</tr>")[:-1]]


# -- the router ---------------------------------------------------------------------------


def test_a_route_without_a_role_cannot_be_registered() -> None:
    console = Console()
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'role'"):
        console.route("/x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"console route '/x': role must be a Role or OPEN"):
        console.route("/x", role=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"console route '/x': methods must be GET or POST"):
        console.route("/x", role=Role.ADMIN, methods=("DELETE",))
    assert console.routes == []


def test_every_console_route_declares_a_role_and_only_signing_in_is_open(
    client: TestClient,
) -> None:
    console_routes = [r for r in client.app.routes if getattr(r, "path", "").startswith(PREFIX)]
    assert console_routes
    assert all(isinstance(r, ConsoleRoute) for r in console_routes)
    open_routes = {
        (r.path, m)
        for r in console_routes
        if isinstance(r, ConsoleRoute) and r.role is OPEN
        for m in r.methods or ()
    }
    assert open_routes == {
        ("/konsoll/logg-inn", "GET"),
        ("/konsoll/logg-inn", "HEAD"),
        ("/konsoll/logg-inn", "POST"),
        ("/konsoll/ta-i-bruk", "GET"),
        ("/konsoll/ta-i-bruk", "HEAD"),
        ("/konsoll/ta-i-bruk", "POST"),
    }


# -- signing in ---------------------------------------------------------------------------


def test_a_page_asks_for_sign_in_first_and_comes_back_after(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "kari", "author")
    answer = client.get(f"{PREFIX}/utvalg?politi=oslo", follow_redirects=False)
    assert answer.status_code == 303
    assert (
        answer.headers["location"] == "/konsoll/logg-inn?neste=%2Fkonsoll%2Futvalg%3Fpoliti%3Doslo"
    )
    token = form_token(client, answer.headers["location"])
    answer = client.post(
        f"{PREFIX}/logg-inn",
        data={
            "csrf": token,
            "name": "kari",
            "password": PASSWORD,
            "code": next_code(secret),
            "next": "/konsoll/utvalg?politi=oslo",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/konsoll/utvalg?politi=oslo"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert {"HttpOnly", "Path=/", "SameSite=strict", "Secure"} <= {
        part.strip() for part in cookie.split(";")
    }
    assert heading(client.get("/konsoll/utvalg?politi=oslo").text) == "Nytt utvalg"


def test_the_next_page_after_sign_in_is_never_another_site(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "kari", "author")
    token = form_token(client, f"{PREFIX}/logg-inn")
    answer = client.post(
        f"{PREFIX}/logg-inn",
        data={
            "csrf": token,
            "name": "kari",
            "password": PASSWORD,
            "code": next_code(secret),
            "next": "//evil.example/konsoll",
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/konsoll"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/konsoll/kampanjer/1?lang=nn", True),
        ("/konsoll", True),
        ("/konsoll/../../evil", False),  # another service on the same host
        ("/konsoll/%2e%2e/%2E%2E/evil", False),
        ("/konsoll/./kampanjer", False),
        ("/konsollen-til-noen-andre", False),
        ("/konsoll/\r\nSet-Cookie:x=1", False),
    ],
)
def test_the_next_page_stays_inside_the_console(given: str, kept: bool) -> None:
    from varsel.web.console_auth import safe_next

    assert safe_next(given, "") == (given if kept else "/konsoll")
    assert safe_next("/varsel" + given, "/varsel") == (
        "/varsel" + given if kept else "/varsel/konsoll"
    )


def test_the_password_alone_is_not_enough(
    client: TestClient, db: Database, settings: Settings
) -> None:
    operator(db, settings, "kari", "author")
    assert sign_in(client, "kari", "") == WRONG
    assert sign_in(client, "kari", "123456") == WRONG
    assert COOKIE not in client.cookies
    assert [e.data["reason"] for e in audit.entries(db, action=audit.Action.SIGN_IN_FAILED)] == [
        "code",
        "code",
    ]


def test_five_failures_lock_the_account_even_for_the_right_code(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "kari", "author")
    for _ in range(5):
        assert sign_in(client, "kari", "000000") == WRONG
    assert sign_in(client, "kari", next_code(secret)) == WRONG
    assert get_user(db, "kari").locked_until is not None
    assert len(audit.entries(db, action=audit.Action.ACCOUNT_LOCKED)) == 1
    # The page says no more than it would for a stranger; the audit log says what happened.
    reasons = [e.data["reason"] for e in audit.entries(db, action=audit.Action.SIGN_IN_FAILED)]
    assert reasons == ["code"] * 5 + ["locked"]


def test_a_locked_account_and_an_unknown_name_get_the_same_answer_for_the_same_work(
    client: TestClient, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator(db, settings, "kari", "author")
    # Count argon2id verifications (the real ones): each attempt must cost one hash, whether
    # the name is known, locked or unknown, so that timing tells no more than the words.
    verified = []
    real_verify = PasswordHasher.verify

    def counted(self: PasswordHasher, stored: str | bytes, password: str | bytes) -> bool:
        verified.append(1)
        return real_verify(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    kari = [sign_in(client, "kari", "000000", password=WRONG_PASSWORD) for _ in range(7)]
    assert len(verified) == 7
    nobody = [sign_in(client, "karin", "000000", password=WRONG_PASSWORD) for _ in range(7)]
    assert len(verified) == 14
    assert kari == nobody == [WRONG] * 7
    entries = audit.entries(db, action=audit.Action.SIGN_IN_FAILED)
    assert [(e.object, e.data["reason"]) for e in entries] == [
        *[("user:kari", "password")] * 5,
        *[("user:kari", "locked")] * 2,
        *[(None, "unknown_user")] * 7,
    ]


def test_a_disabled_account_is_told_so_only_with_the_right_password(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "kari", "author")
    operator(db, settings, "ada", "admin")
    disable_user(db, "kari", actor="ada")
    assert sign_in(client, "kari", next_code(secret), password=WRONG_PASSWORD) == WRONG
    assert sign_in(client, "kari", next_code(secret)) == "kontoen «kari» er deaktivert"


def test_the_sign_in_form_needs_its_csrf_token(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "kari", "author")
    client.get(f"{PREFIX}/logg-inn")  # the cookie half of the token, but not the form's
    answer = client.post(
        f"{PREFIX}/logg-inn",
        data={"name": "kari", "password": PASSWORD, "code": next_code(secret)},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert heading(answer.text) == "Skjemaet kunne ikke sendes"
    assert audit.entries(db, action=audit.Action.SIGN_IN) == []


def limited(settings: Settings, **limits: int) -> Settings:
    return dataclasses.replace(settings, **limits)


def too_many(answer: httpx.Response, text: str) -> None:
    """A 429 whose page says when to try again, agreeing with its Retry-After header."""
    assert answer.status_code == 429
    retry = int(answer.headers["retry-after"])
    assert 1 <= retry <= 2 * 900  # at most two windows: then nothing counted is left
    error = re.search(r'<p class="error" role="alert"[^>]*>([^<]+)</p>', answer.text)
    assert error is not None, answer.text
    minutes = str(math.ceil(retry / 60))
    # Norwegian writes the time of day with a dot (kl. 14.05), English with a colon.
    time_of_day = r"\d\d:\d\d" if text.startswith("The ") else r"\d\d\.\d\d"
    pattern = re.escape(text).replace(re.escape("{time}"), time_of_day)
    pattern = pattern.replace(re.escape("{minutes}"), minutes)
    assert re.fullmatch(pattern, error.group(1)), error.group(1)


def test_a_sign_in_flood_from_one_address_gets_429_before_any_password_is_checked(
    db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "kari", "author")
    with TestClient(create_app(limited(settings, sign_in_per_ip=3)), base_url=HTTPS) as client:
        for _ in range(3):
            assert sign_in(client, "kari", "000000") == WRONG
        token = form_token(client, f"{PREFIX}/logg-inn")
        answer = client.post(
            f"{PREFIX}/logg-inn",
            data={"csrf": token, "name": "kari", "password": PASSWORD, "code": next_code(secret)},
        )
    too_many(
        answer,
        "For mange innloggingsforsøk fra IP-adressen din. "
        "Prøv igjen kl. {time} (om {minutes} min).",
    )
    assert COOKIE not in client.cookies
    # The refused attempt never reached the account: not counted, not audited, not locked.
    kari = get_user(db, "kari")
    assert (kari.failed_attempts, kari.locked_until) == (3, None)
    assert len(audit.entries(db, action=audit.Action.SIGN_IN_FAILED)) == 3
    assert audit.entries(db, action=audit.Action.SIGN_IN) == []


def test_enrolment_counts_against_the_same_limit_as_signing_in(
    db: Database, settings: Settings
) -> None:
    add_user(db, settings, "nils", Role.VIEWER, PASSWORD, actor="test")
    with TestClient(create_app(limited(settings, sign_in_per_ip=2)), base_url=HTTPS) as client:
        assert sign_in(client, "nils", "000000", password=WRONG_PASSWORD) == WRONG
        token = form_token(client, f"{PREFIX}/ta-i-bruk")
        enrol = {"csrf": token, "name": "nils", "password": PASSWORD, "lang": "nn"}
        assert "<svg" in client.post(f"{PREFIX}/ta-i-bruk", data=enrol).text
        answer = client.post(f"{PREFIX}/ta-i-bruk", data=enrol)
    assert "<svg" not in answer.text
    too_many(
        answer,
        "For mange innloggingsforsøk frå IP-adressa di. Prøv igjen kl. {time} (om {minutes} min).",
    )


def test_the_global_limit_stops_attempts_from_many_addresses(
    db: Database, settings: Settings
) -> None:
    operator(db, settings, "kari", "author")
    few = limited(settings, sign_in_per_ip=100, sign_in_global_per_minute=2)
    answers = []
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        with TestClient(create_app(few), base_url=HTTPS, client=(ip, 50000)) as client:
            token = form_token(client, f"{PREFIX}/logg-inn?lang=en")
            data = {"csrf": token, "name": "kari", "password": "x" * 12, "code": "1", "lang": "en"}
            answers.append(client.post(f"{PREFIX}/logg-inn", data=data))
    assert [a.status_code for a in answers] == [401, 401, 429]
    too_many(
        answers[2],
        "The console is receiving too many sign-in attempts right now. "
        "Try again at {time} (in {minutes} min).",
    )


def test_sign_out_ends_the_session_on_the_server(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "kari", "author")
    sign_in(client, "kari", next_code(secret))
    token = client.cookies[COOKIE]
    csrf = form_token(client, PREFIX)
    answer = client.post(f"{PREFIX}/logg-ut", data={"csrf": csrf}, follow_redirects=False)
    assert answer.headers["location"] == "/konsoll/logg-inn?ut=1"
    client.cookies.set(COOKIE, token)  # an old copy of the cookie is worth nothing now
    assert client.get(PREFIX, follow_redirects=False).status_code == 303


def test_signing_in_again_ends_the_session_the_browser_had(
    client: TestClient, db: Database, settings: Settings
) -> None:
    # kari leaves the console open on a shared machine; berit signs in there. kari's session
    # must end on the server too, not only lose its cookie: a copy of it is worth nothing.
    kari = operator(db, settings, "kari", "author")
    berit = operator(db, settings, "berit", "approver")
    sign_in(client, "kari", next_code(kari))
    token = client.cookies[COOKIE]
    assert sign_in(client, "berit", next_code(berit)) == "/konsoll"
    assert client.cookies[COOKIE] != token
    assert client.get(PREFIX).status_code == 200  # berit's
    [ended] = audit.entries(db, action=audit.Action.SIGN_OUT)
    assert (ended.actor, ended.object) == ("kari", "user:kari")
    with TestClient(create_app(settings), base_url=HTTPS) as other:
        other.cookies.set(COOKIE, token)
        assert other.get(PREFIX, follow_redirects=False).status_code == 303


def test_sign_out_everywhere_ends_the_other_sessions_too(
    settings: Settings, db: Database, client: TestClient
) -> None:
    secret = operator(db, settings, "kari", "author")
    sign_in(client, "kari", next_code(secret))
    with TestClient(create_app(settings), base_url=HTTPS) as other:
        other.cookies.set(COOKIE, client.cookies[COOKIE])
        assert other.get(PREFIX).status_code == 200
        csrf = form_token(client, PREFIX)
        client.post(f"{PREFIX}/logg-ut-overalt", data={"csrf": csrf})
        assert other.get(PREFIX, follow_redirects=False).status_code == 303
    assert [e.actor for e in audit.entries(db, action=audit.Action.SIGN_OUT_EVERYWHERE)] == ["kari"]


def test_an_idle_session_ends(client: TestClient, db: Database, settings: Settings) -> None:
    secret = operator(db, settings, "kari", "author")
    sign_in(client, "kari", next_code(secret))
    assert client.get(PREFIX).status_code == 200
    with db.transaction():
        db.execute("UPDATE sessions SET last_seen_at = '2020-01-01T00:00:00.000Z'")
    assert client.get(PREFIX, follow_redirects=False).status_code == 303


def test_a_post_without_a_session_is_refused_with_401(client: TestClient) -> None:
    answer = client.post(f"{PREFIX}/kampanjer/1/send", data={"csrf": "x"})
    assert answer.status_code == 401
    assert heading(answer.text) == "Du er ikke logget inn"


def test_htmx_gets_a_redirect_header_instead_of_the_sign_in_page(client: TestClient) -> None:
    answer = client.get(
        f"{PREFIX}/utvalg/telling?politi=oslo",
        headers={"HX-Request": "true"},
        follow_redirects=False,
    )
    assert answer.status_code == 204
    assert answer.headers["hx-redirect"] == (
        "/konsoll/logg-inn?neste=%2Fkonsoll%2Futvalg%2Ftelling%3Fpoliti%3Doslo"
    )


# -- enrolment ----------------------------------------------------------------------------


def test_enrolment_shows_the_qr_code_and_a_code_from_it_confirms_the_account(
    client: TestClient, db: Database, settings: Settings
) -> None:
    enrolment = add_user(db, settings, "nils", Role.VIEWER, PASSWORD, actor="test")
    token = form_token(client, f"{PREFIX}/ta-i-bruk")
    shown = client.post(
        f"{PREFIX}/ta-i-bruk", data={"csrf": token, "name": "nils", "password": PASSWORD}
    )
    assert shown.status_code == 200
    assert "<svg" in shown.text
    assert f'<code class="secret">{enrolment.secret}</code>' in shown.text
    answer = client.post(
        f"{PREFIX}/ta-i-bruk",
        data={
            "csrf": token,
            "name": "nils",
            "password": PASSWORD,
            "code": pyotp.TOTP(enrolment.secret).now(),
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/konsoll/logg-inn?klar=1"
    assert get_user(db, "nils").enrolled
    assert sign_in(client, "nils", next_code(enrolment.secret)) == "/konsoll"


def test_enrolment_needs_the_password(client: TestClient, db: Database, settings: Settings) -> None:
    add_user(db, settings, "nils", Role.VIEWER, PASSWORD, actor="test")
    token = form_token(client, f"{PREFIX}/ta-i-bruk")
    shown = client.post(
        f"{PREFIX}/ta-i-bruk", data={"csrf": token, "name": "nils", "password": "feil passord 1"}
    )
    assert shown.status_code == 400
    assert "<svg" not in shown.text
    assert WRONG in shown.text


def test_an_enrolled_account_cannot_show_its_qr_code_again(
    client: TestClient, db: Database, settings: Settings
) -> None:
    operator(db, settings, "kari", "author")
    token = form_token(client, f"{PREFIX}/ta-i-bruk")
    shown = client.post(
        f"{PREFIX}/ta-i-bruk", data={"csrf": token, "name": "kari", "password": PASSWORD}
    )
    assert shown.status_code == 400
    assert "<svg" not in shown.text
    assert "brukeren «kari» har allerede bekreftet TOTP" in shown.text


# -- accounts and the audit log ------------------------------------------------------------


def test_an_administrator_adds_an_account_and_changes_its_role(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "ada", "admin")
    sign_in(client, "ada", next_code(secret))
    csrf = form_token(client, f"{PREFIX}/brukere")
    added = client.post(
        f"{PREFIX}/brukere",
        data={"csrf": csrf, "name": "Ola", "role": "author", "email": "ola@example.test",
              "password": PASSWORD},
    )  # fmt: skip
    assert added.status_code == 200
    assert "Kontoen «ola» er laget." in added.text
    client.post(f"{PREFIX}/brukere/ola/rolle", data={"csrf": csrf, "role": "approver"})
    client.post(f"{PREFIX}/brukere/ola/deaktiver", data={"csrf": csrf})
    ola = get_user(db, "ola")
    assert (ola.role, ola.disabled, ola.email) == (Role.APPROVER, True, "ola@example.test")
    assert [(e.actor, e.action, e.object) for e in audit.entries(db, actor="ada")][-3:] == [
        ("ada", "user_add", "user:ola"),
        ("ada", "user_role", "user:ola"),
        ("ada", "user_disable", "user:ola"),
    ]


def test_a_bad_account_is_refused_with_the_librarys_message(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "ada", "admin")
    sign_in(client, "ada", next_code(secret))
    csrf = form_token(client, f"{PREFIX}/brukere")
    answer = client.post(
        f"{PREFIX}/brukere",
        data={"csrf": csrf, "name": "ola", "role": "author", "password": "kort"},
    )
    assert answer.status_code == 400
    assert "passordet må ha minst 12 tegn" in answer.text
    assert [u.name for u in list_users(db)] == ["ada"]


def test_a_new_totp_key_from_the_console_takes_a_new_password(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "ada", "admin")
    operator(db, settings, "ola", "author")
    sign_in(client, "ada", next_code(secret))
    page = client.get(f"{PREFIX}/brukere").text
    assert 'id="nytt-passord-ola"' in page
    csrf = form_token(client, f"{PREFIX}/brukere")
    before = db.query("SELECT password_hash, totp_secret FROM users WHERE name = 'ola'")
    weak = client.post(
        f"{PREFIX}/brukere/ola/nullstill-totp", data={"csrf": csrf, "password": "kort"}
    )
    assert weak.status_code == 400
    assert "passordet må ha minst 12 tegn" in weak.text
    assert db.query("SELECT password_hash, totp_secret FROM users WHERE name = 'ola'") == before
    reset = client.post(
        f"{PREFIX}/brukere/ola/nullstill-totp",
        data={"csrf": csrf, "password": "et-helt-nytt-passord"},
    )
    assert reset.status_code == 200
    assert "«ola» har fått ny TOTP-nøkkel og nytt passord og er logget ut." in reset.text
    new_secret = db.scalar("SELECT totp_secret FROM users WHERE name = 'ola'")
    code = pyotp.TOTP(new_secret).now()
    with pytest.raises(SignInError):
        confirm_totp(db, settings, "ola", PASSWORD, code)  # the old password enrols nothing
    assert confirm_totp(db, settings, "ola", "et-helt-nytt-passord", code).enrolled


def test_the_last_administrator_cannot_be_disabled(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "ada", "admin")
    sign_in(client, "ada", next_code(secret))
    csrf = form_token(client, f"{PREFIX}/brukere")
    answer = client.post(f"{PREFIX}/brukere/ada/deaktiver", data={"csrf": csrf})
    assert answer.status_code == 400
    assert "«ada» er den eneste aktive administratoren" in answer.text
    assert not get_user(db, "ada").disabled


def test_the_audit_log_filters_by_action_actor_and_date(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "berit", "approver")
    operator(db, settings, "kari", "author")
    sign_in(client, "berit", next_code(secret))
    page = client.get(f"{PREFIX}/logg?handling=user_add&aktor=test&fra=2020-01-01")
    assert [row[3] for row in cells(page.text)] == ["user:kari", "user:berit"]  # Gjelder
    assert page.text.count('<td>Konto laget<br><small class="code"') == 2
    assert "Kjeden er hel:" in page.text
    assert client.get(f"{PREFIX}/logg?fra=1.mars").status_code == 400


def test_the_audit_log_shows_a_strangers_typed_name_escaped(
    client: TestClient, db: Database, settings: Settings
) -> None:
    # The name of a failed sign-in is whatever was typed: a bidi override would show
    # «\u202enimda» as «admin», and control characters would hide in the page.
    secret = operator(db, settings, "berit", "approver")
    typed = "\u202enimda\x1b[2k"
    assert sign_in(client, typed, "123456", WRONG_PASSWORD) == WRONG
    sign_in(client, "berit", next_code(secret))
    page = client.get(f"{PREFIX}/logg?handling=sign_in_failed")
    assert "\u202e" not in page.text
    assert "\x1b" not in page.text
    (row,) = cells(page.text)
    assert (row[2], row[3]) == ("anonym", "–")  # the typed name is no actor, and no account
    assert "reason: unknown_user" in page.text
    assert "name: \\u202enimda\\x1b[2k" in page.text
    assert audit.entries(db, action=audit.Action.SIGN_IN_FAILED)[0].data["name"] == typed


def test_a_viewer_cannot_open_the_audit_log_or_the_accounts(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "vera", "viewer")
    sign_in(client, "vera", next_code(secret))
    for path in ("/logg", "/brukere", "/utvalg"):
        answer = client.get(PREFIX + path)
        assert (answer.status_code, heading(answer.text)) == (403, "Ikke tilgang"), path
    assert client.get(PREFIX).status_code == 200


def test_a_readers_comment_cannot_turn_the_date_beside_it_around(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    from varsel import feedback

    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    # A right-to-left override left open in the comment would run on into the date after it.
    comment = "Bra, takk \u202e"
    feedback.store(db, feedback.Feedback(cid, None, 4, None, None, comment, "nb"))
    page = client.get(f"{PREFIX}/kampanjer/{cid}/dekning").text
    assert f'<li><bdi>{comment}</bdi> <span class="hint">(' in page


def test_the_downloads_are_kept_out_of_caches(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    report = client.get(f"{PREFIX}/kampanjer/{cid}/rapport")
    assert report.headers["cache-control"] == "no-store"
    assert report.headers["content-disposition"] == f'attachment; filename="rapport-{cid}.html"'
    assert '<html lang="nb">' in report.text
    # In the language the operator reads the console in.
    assert '<html lang="en">' in client.get(f"{PREFIX}/kampanjer/{cid}/rapport?lang=en").text
    csrf = form_token(client, f"{PREFIX}/kampanjer/{cid}/dekning")
    export = client.post(f"{PREFIX}/kampanjer/{cid}/eksport", data={"csrf": csrf, "format": "csv"})
    assert export.headers["cache-control"] == "no-store"
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    rows = export.content.decode("utf-8-sig").splitlines()
    [entry] = audit.entries(db, action=audit.Action.PERSONAL_DATA_EXPORT)
    assert (entry.actor, entry.object, entry.data["rows"]) == (
        "berit",
        f"campaign:{cid}",
        len(rows) - 1,
    )


def test_an_approval_of_a_page_the_campaign_has_changed_since_is_refused_with_409(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    page = client.get(f"{PREFIX}/kampanjer/{cid}").text
    shown = re.search(r'name="digest" value="([0-9a-f]{64})"', page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert shown is not None
    assert csrf is not None
    spec = dataclasses.replace(get_campaign(db, cid).spec, from_name="Noen andre")
    update_spec(db, cid, spec, actor="kari")
    answer = client.post(
        f"{PREFIX}/kampanjer/{cid}/godkjenn",
        data={"csrf": csrf.group(1), "digest": shown.group(1)},
    )
    assert answer.status_code == 409
    error = re.search(r'<p class="error" role="alert" id="handling-feil">([^<]+)</p>', answer.text)
    assert error is not None
    assert error.group(1) == "Kampanjen er endret siden du åpnet siden. Se over den på nytt."
    assert db.scalar("SELECT count(*) FROM approvals") == 0
    assert audit.entries(db, action=audit.Action.CAMPAIGN_APPROVE) == []


# -- the library's messages in the page's language -------------------------------------------


def test_translate_gives_a_text_in_the_language_and_other_text_as_it_is() -> None:
    missing = Text("kampanje %(campaign)s finnes ikke", campaign=3)
    assert translate("nb", missing) == "kampanje 3 finnes ikke"
    assert translate("nn", missing) == "kampanje 3 finst ikkje"
    assert translate("en", missing) == "campaign 3 does not exist"
    # A value that is a Text is translated too (the parts a changed approval names).
    parts = listed([Text(N_("malene")), Text(N_("mottakerlisten"))])
    assert translate("en", parts) == "the templates, the recipient list"
    assert translate("en", "en tekst uten id") == "en tekst uten id"
    assert translate("en", Text("")) == ""  # not the catalog's header, which gettext("") is


def action_error(answer: httpx.Response) -> str:
    """The campaign page's error after an action (approve, send, pause …)."""
    found = re.search(r'<p class="error" role="alert" id="handling-feil">([^<]+)</p>', answer.text)
    assert found is not None, answer.text
    return found.group(1)


def test_approving_ones_own_campaign_is_refused_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = console_campaign(db, settings, tmp_path, brreg, created_by="berit")
    sign_in_as(client, db, settings, "berit", "approver")
    # The page offers the author no approval form; posted by hand, the library refuses it.
    form = {**page_form(client, f"{PREFIX}/kampanjer/{cid}"), "digest": fingerprint(db, cid).digest}
    shown = {}
    for language in ("nb", "nn", "en"):
        answer = client.post(f"{PREFIX}/kampanjer/{cid}/godkjenn", data={**form, "lang": language})
        assert answer.status_code == 400
        shown[language] = action_error(answer)
    assert shown == {
        # Bokmål: the library's own words, as the command line prints them.
        "nb": f"berit skrev kampanje {cid} og kan ikke godkjenne den selv; "
        "en annen godkjenner må gjøre det",
        "nn": f"berit skreiv kampanje {cid} og kan ikkje godkjenne han sjølv; "
        "ein annan godkjennar må gjere det",
        "en": f"berit wrote campaign {cid} and cannot approve it themselves; "
        "another approver must do it",
    }
    assert db.scalar("SELECT count(*) FROM approvals") == 0


def test_an_approver_who_edited_the_campaign_is_offered_no_approval_and_refused(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    spec = get_campaign(db, cid).spec
    update_spec(db, cid, dataclasses.replace(spec, from_name="Berits navn"), actor="berit")
    page = client.get(f"{PREFIX}/kampanjer/{cid}?lang=en").text
    assert "You have changed this campaign and cannot approve it yourself." in page
    assert f"/kampanjer/{cid}/godkjenn" not in page
    form = {**page_form(client, f"{PREFIX}/kampanjer/{cid}"), "digest": fingerprint(db, cid).digest}
    answer = client.post(f"{PREFIX}/kampanjer/{cid}/godkjenn", data={**form, "lang": "nn"})
    assert answer.status_code == 400
    assert action_error(answer) == (
        f"berit har endra kampanje {cid} og kan ikkje godkjenne han sjølv; ein annan "
        "godkjennar, som ikkje har skrive eller endra han, må gjere det"
    )
    assert db.scalar("SELECT count(*) FROM approvals") == 0


def test_approving_twice_is_refused_in_nynorsk_and_english(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    form = page_form(client, f"{PREFIX}/kampanjer/{cid}")
    approved = client.post(f"{PREFIX}/kampanjer/{cid}/godkjenn", data=form, follow_redirects=False)
    assert approved.status_code == 303
    [at] = db.query("SELECT approved_at FROM approvals WHERE campaign_id = ?", (cid,))
    when = f"{at[0][:16].replace('T', ' ')} UTC"
    nn = client.post(f"{PREFIX}/kampanjer/{cid}/godkjenn", data={**form, "lang": "nn"})
    en = client.post(f"{PREFIX}/kampanjer/{cid}/godkjenn", data={**form, "lang": "en"})
    assert (nn.status_code, en.status_code) == (400, 400)
    assert action_error(nn) == f"kampanje {cid} er allereie godkjend av berit ({when})"
    assert action_error(en) == f"campaign {cid} is already approved by berit ({when})"
    assert db.scalar("SELECT count(*) FROM approvals") == 1


def test_a_send_without_an_approval_that_holds_is_refused_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    form = page_form(client, f"{PREFIX}/kampanjer/{cid}")
    answer = client.post(f"{PREFIX}/kampanjer/{cid}/send", data={**form, "lang": "nn"})
    assert answer.status_code == 409
    # Never approved: the page's own approval form, not the command line, is named.
    assert action_error(answer) == (
        "Kampanjen er ikkje godkjend enno. Ein godkjennar som ikkje skreiv han, må godkjenne han "
        "under «Godkjenning (fire auge)» på denne sida før han kan sendast."
    )
    client.post(f"{PREFIX}/kampanjer/{cid}/godkjenn", data=form)
    spec = get_campaign(db, cid).spec
    nn = dataclasses.replace(spec.templates["nn"], subject=spec.templates["nn"].subject + " (ny)")
    changed = dataclasses.replace(spec, templates={**spec.templates, "nn": nn}, from_name="NSR 2")
    update_spec(db, cid, changed, actor="kari")
    # The changed parts are named in the page's language too.
    answer = client.post(f"{PREFIX}/kampanjer/{cid}/send", data={**form, "lang": "en"})
    assert answer.status_code == 409
    assert action_error(answer) == (
        f"the approval of campaign {cid} no longer holds: the templates, the sender changed "
        "after berit approved it; it must be approved again"
    )
    answer = client.post(f"{PREFIX}/kampanjer/{cid}/send", data=form)
    assert action_error(answer) == (
        f"godkjenningen av kampanje {cid} gjelder ikke lenger: malene, avsenderen er endret "
        "etter at berit godkjente den; den må godkjennes på nytt"
    )


def test_the_campaign_page_says_an_approval_lapsed_with_its_disabled_approver(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = approved_by_berit(client, db, settings, tmp_path, brreg)
    disable_user(db, "berit", actor="anne")  # a stolen account: its session ends too
    sign_in_as(client, db, settings, "kari", "author")
    page = client.get(f"{PREFIX}/kampanjer/{cid}?lang=nn").text
    lapsed = re.search(r'<p class="warning-text" id="godkjenning-bortfalt">([^<]+)</p>', page)
    assert lapsed is not None, page
    assert lapsed.group(1) == (
        "Godkjenninga frå berit gjeld ikkje lenger: godkjennaren berit er deaktivert. "
        "Kampanjen må godkjennast på nytt før han blir send."
    )
    assert f"/kampanjer/{cid}/send" not in page  # no Send button
    form = page_form(client, f"{PREFIX}/kampanjer/{cid}")
    answer = client.post(f"{PREFIX}/kampanjer/{cid}/send", data={**form, "lang": "en"})
    assert answer.status_code == 409
    assert action_error(answer) == (
        f"the approval of campaign {cid} no longer holds: the approver berit is disabled; "
        "it must be approved again"
    )


def lapsed_notice(html: str) -> list[str]:
    """The users page's words on approvals that no longer hold: its paragraph, then each item."""
    found = re.search(r'<div id="godkjenninger-bortfalt">(.*?)</div>', html, re.S)
    assert found is not None, html
    parts = re.findall(r"<(?:p|li)[^>]*>(.*?)</(?:p|li)>", found.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", part).split()) for part in parts]


def test_disabling_an_approver_names_the_campaigns_whose_approval_is_void(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    from varsel.approval import approve
    from varsel.campaign import create_campaign

    first = approved_by_berit(client, db, settings, tmp_path, brreg)
    second = create_campaign(db, settings, tmp_path / "c.toml", created_by="kari").campaign.id
    approve(db, settings, second, get_user(db, "berit"))
    # Sent already: let through the gate before, it goes on (set here, not by a real send).
    db.execute("UPDATE campaigns SET status = 'sending' WHERE id = ?", (second,))
    client.cookies.clear()
    sign_in_as(client, db, settings, "ada", "admin")
    csrf = form_token(client, f"{PREFIX}/brukere")
    page = client.post(f"{PREFIX}/brukere/berit/deaktiver", data={"csrf": csrf})
    assert notice(page) == "berit er deaktivert og logget ut på alle enheter."
    assert lapsed_notice(page.text) == [
        "Godkjenningene fra berit av kampanjene under gjelder ikke lenger: de må godkjennes på "
        "nytt før de sendes (videre).",
        f"Kampanje {first}: Test",
        f"Kampanje {second}: Test. Den sendes nå og fortsetter til noen setter den på pause.",
    ]
    assert f'<a href="{PREFIX}/kampanjer/{first}">' in page.text
    english = client.get(f"{PREFIX}/brukere?endret=deaktiver&bruker=berit&lang=en").text
    assert lapsed_notice(english) == [
        "The approvals by berit of the campaigns below no longer hold: they must be approved "
        "again before they are sent (any further).",
        f"Campaign {first}: Test",
        f"Campaign {second}: Test. It is being sent now and goes on until someone pauses it.",
    ]


def test_demoting_an_approver_names_the_campaign_whose_approval_is_void(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = approved_by_berit(client, db, settings, tmp_path, brreg)
    client.cookies.clear()
    sign_in_as(client, db, settings, "ada", "admin")
    csrf = form_token(client, f"{PREFIX}/brukere")
    still = client.post(f"{PREFIX}/brukere/berit/rolle", data={"csrf": csrf, "role": "admin"})
    assert notice(still) == "berit har nå rollen Administrator."
    assert "godkjenninger-bortfalt" not in still.text  # an administrator may still approve
    page = client.post(
        f"{PREFIX}/brukere/berit/rolle", data={"csrf": csrf, "role": "author", "lang": "nn"}
    )
    assert lapsed_notice(page.text) == [
        "Godkjenninga frå berit av kampanjen under gjeld ikkje lenger: han må godkjennast på "
        "nytt før han blir send (vidare).",
        f"Kampanje {cid}: Test",
    ]


def test_an_account_without_approvals_is_disabled_without_a_word_on_them(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "ada", "admin")
    operator(db, settings, "berit", "approver")
    csrf = form_token(client, f"{PREFIX}/brukere")
    page = client.post(f"{PREFIX}/brukere/berit/deaktiver", data={"csrf": csrf})
    assert notice(page) == "berit er deaktivert og logget ut på alle enheter."
    assert "godkjenninger-bortfalt" not in page.text


def test_a_campaign_that_does_not_exist_is_named_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "vera", "viewer")
    answers = {lang: client.get(f"{PREFIX}/kampanjer/999?lang={lang}") for lang in ("nn", "en")}
    assert {lang: a.status_code for lang, a in answers.items()} == {"nn": 404, "en": 404}
    assert 'role="alert">kampanje 999 finst ikkje</p>' in answers["nn"].text
    assert 'role="alert">campaign 999 does not exist</p>' in answers["en"].text


def test_a_bad_account_is_refused_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "ada", "admin")
    sign_in(client, "ada", next_code(secret))
    csrf = form_token(client, f"{PREFIX}/brukere")
    short = {"csrf": csrf, "name": "ola", "role": "author", "password": "kort"}
    nn = client.post(f"{PREFIX}/brukere", data={**short, "lang": "nn"})
    en = client.post(f"{PREFIX}/brukere/ada/deaktiver", data={"csrf": csrf, "lang": "en"})
    assert (nn.status_code, en.status_code) == (400, 400)
    assert "passordet må ha minst 12 teikn" in nn.text
    assert "“ada” is the only active administrator" in en.text
    assert [u.name for u in list_users(db)] == ["ada"]


def test_a_refusal_after_the_right_password_is_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secret = operator(db, settings, "kari", "author")
    operator(db, settings, "ada", "admin")
    disable_user(db, "kari", actor="ada")
    token = form_token(client, f"{PREFIX}/logg-inn?lang=en")
    answer = client.post(
        f"{PREFIX}/logg-inn",
        data={"csrf": token, "name": "kari", "password": PASSWORD, "code": next_code(secret),
              "lang": "en"},
    )  # fmt: skip
    assert answer.status_code == 401
    assert (
        '<p class="error" role="alert" id="innlogging-feil">the account “kari” is disabled</p>'
        in (answer.text)
    )


def test_the_new_campaign_form_names_a_mistake_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    csrf = form_token(client, f"{PREFIX}/kampanjer/ny?politi=oslo")
    form = {
        "csrf": csrf,
        "politi": "oslo",
        "name": "Råd",
        "from_address": "sikkerhet.nsr-org.no",
        "from_name": "NSR",
        "organisation": "NSR",
        "document_title": "Råd",
        "document_url": "https://www.politiet.no/rad.pdf",
        "public_base_url": "https://www.politiet.no/varsel",
    }
    shown = {}
    for language in ("nb", "en"):
        answer = client.post(f"{PREFIX}/kampanjer/ny", data={**form, "lang": language})
        assert answer.status_code == 400
        # At its field, named by the field's label (not the definition's table and key).
        error = re.search(r'id="from_address-feil"><span[^>]*>[^<]*</span>([^<]+)</p>', answer.text)
        assert error is not None, answer.text
        shown[language] = error.group(1).replace("&#39;", "'")
    assert shown == {
        "nb": "Avsenderadresse: «sikkerhet.nsr-org.no» er ikke en brukbar e-postadresse "
        "(mangler @)",
        "en": "Sender address: “sikkerhet.nsr-org.no” is not a usable e-mail address "
        "(@ is missing)",
    }


def test_the_segment_builder_names_a_bad_criterion_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings, brreg: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    sign_in_as(client, db, settings, "kari", "author")

    def error(query: str) -> str:
        found = re.search(
            r'<p class="error">([^<]+)</p>', client.get(f"{PREFIX}/utvalg/telling?{query}").text
        )
        assert found is not None
        return found.group(1)

    assert error("kommuner=Bergn&lang=nn") == "Ukjend kommune «Bergn» (meinte du Bergen?)"
    assert error("kommuner=Bergn&lang=en") == "Unknown municipality “Bergn” (did you mean Bergen?)"
    assert error("kommuner=Bergn") == "Ukjent kommune «Bergn» (mente du Bergen?)"
    assert error("politi=oslo&ansatte=mange&lang=en") == (
        "the selection: “At least this many employees” must be a whole number from 0 to "
        "10\u00a0000\u00a0000"
    )
    assert error("politi=oslo&ansatte=mange&lang=nn") == (
        "utvalet: «Minst så mange tilsette» skal vere eit heilt tal frå 0 til 10\u00a0000\u00a0000"
    )
    assert error("politi=oslo&ansatte=%C2%B2") == (  # "²": a digit to isdigit, not to int
        "utvalget: «Minst så mange ansatte» skal være et helt tall fra 0 til 10\u00a0000\u00a0000"
    )
    assert error("kommuner=Oslo&ansatte=99999999999999999999") == (
        "utvalget: «Minst så mange ansatte» skal være et helt tall fra 0 til 10\u00a0000\u00a0000"
    )
    assert error("politi=oslo&regel=exact&lang=en") == (
        "“Rule for employees” exact needs “At least this many employees” of 1 or more"
    )


def test_the_segment_builder_names_a_follow_ups_campaigns_by_the_fields_label(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "kari", "author")
    errors = {
        lang: re.findall(
            r'<p class="error">([^<]+)</p>',
            client.get(f"{PREFIX}/utvalg/telling?politi=oslo&utelat=1,to&lang={lang}").text,
        )
        for lang in ("nb", "en")
    }
    # The field's label, as the form shows it; not the campaign file's key (exclude_reached_by).
    assert errors["nb"] == [
        "utvalget: «Utelat dem disse kampanjene nådde» skal være kampanjenumre (hele tall, som "
        "1,3), ikke «to»"
    ]
    assert errors["en"] == [
        "the selection: «Leave out those these campaigns reached» must be campaign numbers "
        "(whole numbers, such as 1,3), not «to»"
    ]


def test_the_segment_count_shows_units_abroad_in_a_row_of_their_own(
    client: TestClient, db: Database, settings: Settings, brreg: Path
) -> None:
    # Two of the sample's three NUFs have their business address abroad: no municipality.
    import_dump(db, brreg / "enheter-sample.json")
    sign_in_as(client, db, settings, "kari", "author")
    page = client.get(f"{PREFIX}/utvalg/telling?former=NUF").text
    rows = re.findall(r"<tr><td>([^<]*)</td><td class=\"number\">(\d+)</td>", page)
    assert rows == [("Oslo", "1"), ("Utlandet", "2")]


def post_templates(
    client: TestClient, cid: int, csrf: str, lang: str, fields: dict[str, str]
) -> httpx.Response:
    """The template editor's form, posted with these fields in a page language."""
    return client.post(
        f"{PREFIX}/kampanjer/{cid}/maler", data={"csrf": csrf, "lang": lang, **fields}
    )


def test_the_editor_says_why_a_template_cannot_be_previewed_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    csrf = form_token(client, f"{PREFIX}/kampanjer/{cid}/maler")
    shown = {}
    for language in ("nb", "en"):
        answer = post_templates(client, cid, csrf, language, {"nn-subject": "Råd til {{ navn"})
        assert answer.status_code == 200
        shown[language] = set(re.findall(r'<p class="error">([^<]+)</p>', answer.text))
    # Jinja's own words stay as Jinja wrote them; varsel's around them are the page's.
    jinja = "unexpected end of template, expected &#39;end of print statement&#39;."
    assert shown == {
        "nb": {f"emne (nn), linje 1: {jinja}"},
        "en": {f"subject (nn), line 1: {jinja}"},
    }


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_a_librarys_message_shows_what_was_typed_as_text(
    client: TestClient, db: Database, settings: Settings, lang: str
) -> None:
    # The message names the account asked for: escaped like any value, and a % left as it is
    # (the templates once put such messages through _(), which took them for safe HTML and
    # %-formatted them).
    secret = operator(db, settings, "ada", "admin")
    sign_in(client, "ada", next_code(secret))
    csrf = form_token(client, f"{PREFIX}/brukere")
    typed = "<i>50%"
    answer = client.post(
        f"{PREFIX}/brukere/{quote(typed, safe='')}/deaktiver", data={"csrf": csrf, "lang": lang}
    )
    assert answer.status_code == 400
    assert "&lt;i&gt;50%" in answer.text
    assert "<i>50%" not in answer.text


def lint_findings(answer: httpx.Response) -> list[str]:
    """The editor's lint findings, each as 'Feil: …' (or the page's words for it)."""
    found = re.findall(
        r'<li class="finding-\w+"><strong>([^<]+)</strong> ([^<]+)</li>', answer.text
    )
    return [f"{label} {message}" for label, message in found]


def test_a_lint_finding_is_shown_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    csrf = form_token(client, f"{PREFIX}/kampanjer/{cid}/maler")
    text = get_campaign(db, cid).spec.templates["nn"].text + "\nLes meir: https://bit.ly/3xYz\n"
    saved = post_templates(client, cid, csrf, "nn", {"action": "save", "nn-text": text})
    assert saved.status_code == 200
    linted = {
        lang: client.post(f"{PREFIX}/kampanjer/{cid}/lint", data={"csrf": csrf, "lang": lang})
        for lang in ("nb", "en")
    }
    shortener = {
        lang: [f for f in lint_findings(answer) if "bit.ly" in f]
        for lang, answer in {"nn": saved, **linted}.items()
    }
    assert shortener == {
        # Bokmål: the words `varsel campaign lint` prints.
        "nb": [
            "Feil: nn (tekst): https://bit.ly/3xYz er en forkortet lenke (bit.ly); mottakeren "
            "kan ikke se hvor den fører. Skriv hele adressen."
        ],
        "nn": [
            "Feil: nn (tekst): https://bit.ly/3xYz er ei forkorta lenkje (bit.ly); mottakaren "
            "kan ikkje sjå kvar ho fører. Skriv heile adressa."
        ],
        "en": [
            "Error: nn (text): https://bit.ly/3xYz is a shortened link (bit.ly); the recipient "
            "cannot see where it leads. Write the full address."
        ],
    }


def test_a_template_lint_cannot_render_is_named_without_the_sample_delivery_in_english(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    csrf = form_token(client, f"{PREFIX}/kampanjer/{cid}/maler")
    # Fails for each recipient, not in the subject: the factory's message names the delivery,
    # which the linter leaves out (the sample's made-up id would only confuse).
    why = "ZeroDivisionError: division by zero"
    expected = {
        "nb": f"Feil: en: malen kan ikke brukes: malfeil: {why}",
        "en": f"Error: en: the template cannot be used: template error: {why}",
    }
    for lang, finding in expected.items():
        answer = post_templates(
            client, cid, csrf, lang, {"action": "save", "en-text": "{{ 1 / 0 }}"}
        )
        assert answer.status_code == 200
        assert [f for f in lint_findings(answer) if why in f] == [finding]


def test_a_preview_of_a_template_that_would_take_the_process_s_memory_is_a_finding(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    # The console renders the template in its own process: "%999999999s" is a gigabyte there.
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    csrf = form_token(client, f"{PREFIX}/kampanjer/{cid}/maler")
    text = '{{ "%999999999s"|format(unit.name) }}'
    answer = post_templates(client, cid, csrf, "nb", {"action": "save", "en-text": text})
    assert answer.status_code == 200
    why = "teksten eller listen blir for lang (over 100000) med «|format» «%999999999s»"
    assert [f for f in lint_findings(answer) if why in f] == [
        f"Feil: en: malen kan ikke brukes: malfeil: {why}"
    ]


def test_why_a_send_stopped_is_shown_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> None:
    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    form = page_form(client, f"{PREFIX}/kampanjer/{cid}")
    client.post(f"{PREFIX}/kampanjer/{cid}/godkjenn", data=form)
    # The campaign's key went missing after the approval: the send stops before any message.
    [key] = (tmp_path / "keys").glob("*.pem")
    key.unlink()
    selector, _, domain = key.name.removesuffix(".pem").partition("._domainkey.")
    command = f"--domain {domain} --selector {selector}"
    started = client.post(f"{PREFIX}/kampanjer/{cid}/send", data=form, follow_redirects=False)
    assert started.status_code == 303
    client.app.state.senders.join(30)  # type: ignore[attr-defined]
    shown = {}
    for lang in ("nb", "nn", "en"):
        page = client.get(f"{PREFIX}/kampanjer/{cid}?lang={lang}").text
        found = re.search(r'<p class="error" role="alert">([^<]+)</p>', page)
        assert found is not None, page
        shown[lang] = found.group(1)
    assert shown == {
        "nb": f"Forrige sending stoppet: DKIM-nøkkelen {key} finnes ikke; lag den med "
        f"«varsel keys generate {command}» og publiser DNS-posten",
        "nn": f"Førre sending stoppa: DKIM-nøkkelen {key} finst ikkje; lag han med "
        f"«varsel keys generate {command}» og publiser DNS-posten",
        "en": f"The last send stopped: the DKIM key {key} does not exist; make it with "
        f"“varsel keys generate {command}” and publish the DNS record",
    }
    assert db.scalar("SELECT count(*) FROM deliveries WHERE state = 'sent'") == 0


def test_where_a_lint_finding_is_is_named_in_the_pages_language() -> None:
    from varsel.lint_content import _where

    assert _where("nb", ["HTML", "emne", "tekst"]) == "nb (emne, tekst og HTML)"
    assert translate("nn", _where("nb", ["HTML", "emne", "tekst"])) == "nb (emne, tekst og HTML)"
    assert translate("en", _where("nb", ["HTML", "emne", "tekst"])) == "nb (subject, text and HTML)"
    assert translate("en", _where("nn", ["tekst"])) == "nn (text)"
    assert translate("en", _where("en", [])) == "en"


# -- the suppression list (approvers) --------------------------------------------------------

LIST = f"{PREFIX}/sperreliste"


def field_error(answer: httpx.Response, field: str) -> str:
    """The message shown at a field of the suppression form, tied to it by aria-describedby."""
    hidden = '<span class="visually-hidden">[^<]+</span>'
    found = re.search(rf'<p class="error" id="{field}-feil">{hidden}([^<]+)</p>', answer.text)
    assert found is not None, answer.text
    described = re.search(rf'id="{field}"[^>]*aria-describedby="([^"]+)"', answer.text)
    assert described is not None
    assert f"{field}-feil" in described.group(1).split()
    return found.group(1)


def notice(answer: httpx.Response) -> str:
    found = re.search(r'<p class="notice" role="status">\s*(.+?)\s*</p>', answer.text, re.S)
    assert found is not None, answer.text
    return found.group(1)


def test_an_approver_adds_sees_and_removes_and_each_is_audited_with_their_name(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    page = client.get(LIST)
    assert (page.status_code, heading(page.text)) == (200, "Sperrelisten")
    assert cells(page.text) == [["Sperrelisten er tom."]]
    csrf = form_token(client, LIST)
    added = client.post(
        LIST,
        data={"csrf": csrf, "address": "Post@Blåbær.NO", "orgnr": "", "note": "ringte 3. mars"},
    )
    assert added.status_code == 200
    assert notice(added) == "Adressen post@blåbær.no er satt på sperrelisten."
    client.post(LIST, data={"csrf": csrf, "orgnr": "974 760 673"})
    again = client.post(LIST, data={"csrf": csrf, "orgnr": "974760673", "note": "igjen"})
    assert re.fullmatch(
        r"Organisasjonsnummeret 974760673 stod allerede på sperrelisten \(lagt inn av operatør, "
        r"\d+\. \w+ \d{4} kl\. \d\d\.\d\d\)\.",
        notice(again),
    )
    rows = [row[:5] for row in cells(again.text)]
    assert rows == [
        ["Virksomhet", "974760673", "lagt inn av operatør", "konsollen", ""],
        ["Adresse", "post@blåbær.no", "lagt inn av operatør", "konsollen", "ringte 3. mars"],
    ]
    assert 'name="value" value="post@xn--blbr-roah.no"' in again.text  # posted back as stored
    assert suppressed(db, SuppressionKind.ADDRESS, ["post@xn--blbr-roah.no"]) == {
        "post@xn--blbr-roah.no"
    }

    removed = client.post(
        f"{LIST}/fjern",
        data={"csrf": csrf, "kind": "address", "value": "post@xn--blbr-roah.no",
              "note": "adressen er rettet"},
    )  # fmt: skip
    assert removed.status_code == 200
    assert notice(removed) == "Adressen post@blåbær.no er tatt av sperrelisten."
    assert [row[1] for row in cells(removed.text)] == ["974760673"]
    assert suppressed(db, SuppressionKind.ADDRESS, ["post@xn--blbr-roah.no"]) == set()

    changes = [
        (e.actor, e.action, e.object, e.data.get("note"))
        for e in audit.entries(db, actor="berit")
        if e.action in ("suppression_add", "suppression_remove")
    ]
    assert changes == [
        ("berit", "suppression_add", "address:post@xn--blbr-roah.no", "ringte 3. mars"),
        ("berit", "suppression_add", "unit:974760673", None),
        ("berit", "suppression_remove", "address:post@xn--blbr-roah.no", "adressen er rettet"),
    ]
    # Every showing of the list is an export of personal data: the page and each answer.
    shown = audit.entries(db, action=audit.Action.PERSONAL_DATA_EXPORT)
    assert {(e.actor, e.object) for e in shown} == {("berit", "suppressions")}
    assert [e.data["rows"] for e in shown] == [0, 0, 1, 2, 2, 1]


def test_an_empty_list_says_so_across_every_column(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    page = client.get(LIST).text
    columns = page.count('<th scope="col">')
    assert columns == 7
    assert f'<tr><td colspan="{columns}">Sperrelisten er tom.</td></tr>' in page


def test_a_viewer_and_an_author_cannot_see_or_change_the_list(
    client: TestClient, db: Database, settings: Settings
) -> None:
    secrets = {name: operator(db, settings, name, role) for name, role in
               (("vera", "viewer"), ("kari", "author"))}  # fmt: skip
    for name, secret in secrets.items():
        client.cookies.clear()
        sign_in(client, name, next_code(secret))
        assert 'href="/konsoll/sperreliste"' not in client.get(PREFIX).text
        csrf = form_token(client, PREFIX)
        answers = [
            client.get(LIST),
            client.post(LIST, data={"csrf": csrf, "orgnr": "974760673"}),
            client.post(f"{LIST}/fjern", data={"csrf": csrf, "kind": "unit", "value": "974760673"}),
        ]
        assert [(a.status_code, heading(a.text)) for a in answers] == [(403, "Ikke tilgang")] * 3
    assert db.scalar("SELECT count(*) FROM suppressions") == 0
    assert audit.entries(db, action=audit.Action.PERSONAL_DATA_EXPORT) == []


def test_the_list_is_in_an_approvers_menu(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    assert '<a href="/konsoll/sperreliste">Sperrelisten</a>' in client.get(PREFIX).text


def test_a_change_to_the_list_needs_the_forms_token(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    add_manual(db, SuppressionKind.UNIT, "974760673", actor="test")
    answers = [
        client.post(LIST, data={"orgnr": "923609016"}),
        client.post(f"{LIST}/fjern", data={"csrf": "gjettet", "kind": "unit",
                                          "value": "974760673"}),
    ]  # fmt: skip
    assert [(a.status_code, heading(a.text)) for a in answers] == [
        (403, "Skjemaet kunne ikke sendes")
    ] * 2
    assert [e.value for e in entries(db)] == ["974760673"]


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"address": "post@firma,no"}, "address",
         "«post@firma,no» er ikke en brukbar e-postadresse (mangler punktum i domenet etter @)"),
        ({"orgnr": "974 760 674"}, "orgnr",
         "«974 760 674» er ikke et gyldig organisasjonsnummer (feil kontrollsiffer)"),
        ({"orgnr": "97476067"}, "orgnr",
         "«97476067» er ikke et organisasjonsnummer (det har ni siffer)"),
        ({"address": "post@firma.no", "orgnr": "974760673"}, "hva",
         "Fyll ut bare ett av feltene: adresse eller organisasjonsnummer."),
        ({"address": " ", "orgnr": "", "note": "ringte"}, "hva",
         "Skriv en e-postadresse eller et organisasjonsnummer."),
    ],
)  # fmt: skip
def test_a_mistake_is_shown_at_its_field_with_400_and_nothing_is_stored(
    client: TestClient, db: Database, settings: Settings, form: dict[str, str], field: str,
    message: str,
) -> None:  # fmt: skip
    sign_in_as(client, db, settings, "berit", "approver")
    csrf = form_token(client, LIST)
    answer = client.post(LIST, data={"csrf": csrf, **form})
    assert answer.status_code == 400
    assert field_error(answer, field) == message
    assert f'<li><a href="#{field}">{message}</a></li>' in answer.text  # the summary links to it
    for name, typed in form.items():  # kept, to be corrected
        assert f'name="{name}" value="{typed.strip()}"' in answer.text
    assert db.scalar("SELECT count(*) FROM suppressions") == 0
    assert audit.entries(db, action=audit.Action.SUPPRESSION_ADD) == []


def test_a_mistake_is_named_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    csrf = form_token(client, LIST)
    nn = client.post(LIST, data={"csrf": csrf, "address": "post@firma,no", "lang": "nn"})
    en = client.post(LIST, data={"csrf": csrf, "orgnr": "974 760 674", "lang": "en"})
    assert field_error(nn, "address") == (
        "«post@firma,no» er ikkje ei brukbar e-postadresse (manglar punktum i domenet etter @)"
    )
    assert field_error(en, "orgnr") == (
        "“974 760 674” is not a valid organisation number (wrong check digit)"
    )
    added = client.post(LIST, data={"csrf": csrf, "orgnr": "974760673", "lang": "en"})
    assert (
        notice(added) == "The organisation number 974760673 has been added to the suppression list."
    )
    assert [row[:3] for row in cells(added.text)] == [
        ["Business", "974760673", "added by an operator"]
    ]


def test_removing_what_is_not_on_the_list_says_so_with_400(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    csrf = form_token(client, LIST)
    answer = client.post(
        f"{LIST}/fjern", data={"csrf": csrf, "kind": "address", "value": "Post@Blåbær.no"}
    )
    assert answer.status_code == 400
    error = re.search(
        r'<p class="error" role="alert" id="sperreliste-feil">([^<]+)</p>', answer.text
    )
    assert error is not None
    assert error.group(1) == "Adressen post@blåbær.no står ikke på sperrelisten."
    tampered = client.post(f"{LIST}/fjern", data={"csrf": csrf, "kind": "x", "value": "1"})
    assert tampered.status_code == 400
    assert audit.entries(db, action=audit.Action.SUPPRESSION_REMOVE) == []


def test_a_long_list_shows_the_newest_500_and_says_how_many_in_all(
    client: TestClient, db: Database, settings: Settings
) -> None:
    with db.transaction():
        for n in range(502):
            add(db, SuppressionKind.ADDRESS, f"a{n}@firma.no", SuppressionReason.UNSUBSCRIBED)
    sign_in_as(client, db, settings, "berit", "approver")
    page = client.get(LIST)
    assert "<caption>De 500 nyeste av 502 i alt</caption>" in page.text
    assert len(cells(page.text)) == 500


def caption(html: str) -> str:
    found = re.search(r"<caption>(.*?)</caption>", html, re.S)
    assert found is not None, html
    return found.group(1)


def searched_list(db: Database) -> None:
    """An unsubscribe from 2019 under 502 newer entries, a business, and an IDN address."""
    with db.transaction():
        db.execute(
            "INSERT INTO suppressions (kind, value, reason, source, note, created_at) VALUES "
            "('address', 'ola.nordmann@firma.no', 'unsubscribed', 'web:delivery:17', NULL, "
            "'2019-05-01T10:00:00.000Z'), ('unit', '974760673', 'manual', 'console', "
            "'ringte 3. mars', '2019-06-01T10:00:00.000Z'), ('address', "
            "'post@xn--blbr-roah.no', 'hard_bounce', 'delivery:4', NULL, "
            "'2019-07-01T10:00:00.000Z')"
        )
        for n in range(502):
            add(db, SuppressionKind.ADDRESS, f"a{n}@annen.no", SuppressionReason.UNSUBSCRIBED)


def search(client: TestClient, typed: str, lang: str = "nb") -> httpx.Response:
    """The suppression list's search form, posted as the page posts it."""
    # The session's token, from a page that is no showing of the list (each is audited).
    csrf = form_token(client, f"{PREFIX}/kampanjer")
    return client.post(f"{LIST}/finn", data={"csrf": csrf, "finn": typed, "lang": lang})


def test_a_search_is_posted_and_never_read_from_the_address(
    client: TestClient, db: Database, settings: Settings
) -> None:
    # What is searched for is often a person's address: in a URL it would stay in the proxy's
    # access log, the browser's history and the next page's Referer.
    searched_list(db)
    sign_in_as(client, db, settings, "berit", "approver")
    page = client.get(LIST).text
    form = re.search(
        r'<form method="(\w+)" action="([^"]+)"[^>]*role="search">(.*?)</form>', page, re.S
    )
    assert form is not None
    assert form.group(1, 2) == ("post", f"{LIST}/finn#liste")
    assert 'name="csrf"' in form.group(3)
    # An old bookmark with ?finn= shows the whole list: nothing is searched from an address.
    assert caption(client.get(LIST, params={"finn": "ola.nordmann"}).text) == (
        "De 500 nyeste av 505 i alt"
    )
    found = search(client, "ola.nordmann")
    assert (found.status_code, found.url.path, found.url.query) == (200, f"{LIST}/finn", b"")
    assert caption(found.text) == "1 av 505 passer til «ola.nordmann», nyeste først"
    # Without the form's token the search is refused, as every posted form is.
    forged = client.post(f"{LIST}/finn", data={"finn": "ola.nordmann"})
    assert forged.status_code == 403


@pytest.mark.parametrize(
    ("typed", "row"),
    [
        ("Ola.Nordmann@FIRMA.no", ["Adresse", "ola.nordmann@firma.no", "avmeldt",
                                   "avmelding på nettsiden (levering 17)", "",
                                   "1. mai 2019 kl. 12.00"]),
        ("974 760 673", ["Virksomhet", "974760673", "lagt inn av operatør", "konsollen",
                         "ringte 3. mars", "1. juni 2019 kl. 12.00"]),
        ("æ", ["Adresse", "post@blåbær.no", "adressen finnes ikke",
               "retur fra e-posttjenesten (levering 4)", "", "1. juli 2019 kl. 12.00"]),
    ],
)  # fmt: skip
def test_a_search_finds_an_entry_however_far_down_the_list(
    client: TestClient, db: Database, settings: Settings, typed: str, row: list[str]
) -> None:
    searched_list(db)
    sign_in_as(client, db, settings, "berit", "approver")
    page = search(client, typed)
    assert page.status_code == 200
    assert [r[:6] for r in cells(page.text)] == [row]
    assert caption(page.text) == f"1 av 505 passer til «{typed}», nyeste først"
    assert f'name="finn" value="{typed}"' in page.text  # to search again from


def test_a_search_that_finds_nothing_says_so(
    client: TestClient, db: Database, settings: Settings
) -> None:
    add_manual(db, SuppressionKind.UNIT, "974760673", actor="test")
    sign_in_as(client, db, settings, "berit", "approver")
    page = search(client, " kari@ ").text
    assert caption(page) == "Ingen av 1 passer til «kari@»"
    assert '<tr><td colspan="7">Ingen oppføringer passer til «kari@».</td></tr>' in page
    assert f'<a href="{LIST}#liste">Vis hele listen</a>' in page


def test_a_search_is_said_in_the_pages_language(
    client: TestClient, db: Database, settings: Settings
) -> None:
    searched_list(db)
    sign_in_as(client, db, settings, "berit", "approver")
    said = {lang: caption(search(client, "@", lang).text) for lang in ("nb", "nn", "en")}
    assert said == {
        "nb": "De 500 nyeste av 504 som passer til «@» (505 på listen i alt)",
        "nn": "Dei 500 nyaste av 504 som passar til «@» (505 på lista i alt)",
        "en": "The newest 500 of 504 that match “@” (505 on the list in all)",
    }
    one = search(client, "974", "en").text
    assert caption(one) == "1 of 505 matches “974”, newest first"
    none = search(client, "kari", "nn").text
    assert '<tr><td colspan="7">Ingen oppføringar passar til «kari».</td></tr>' in none


def test_a_search_is_shown_as_text(client: TestClient, db: Database, settings: Settings) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    page = search(client, "<b>%(total)s</b>").text
    assert caption(page) == "Ingen av 0 passer til «&lt;b&gt;%(total)s&lt;/b&gt;»"


def test_a_search_is_recorded_as_an_export_without_what_was_searched_for(
    client: TestClient, db: Database, settings: Settings
) -> None:
    searched_list(db)
    sign_in_as(client, db, settings, "berit", "approver")
    search(client, "ola.nordmann")
    client.get(LIST)
    shown = audit.entries(db, action=audit.Action.PERSONAL_DATA_EXPORT)
    assert [(e.data["search"], e.data["rows"]) for e in shown] == [(True, 1), (False, 500)]
    assert not [e for e in audit.entries(db) if "ola.nordmann" in str(e.data)]


def test_taking_an_entry_off_a_search_shows_the_search_again(
    client: TestClient, db: Database, settings: Settings
) -> None:
    searched_list(db)
    sign_in_as(client, db, settings, "berit", "approver")
    page = search(client, "firma")
    assert 'name="finn" value="firma"' in page.text.split("/sperreliste/fjern", 1)[1]
    csrf = form_token(client, LIST)
    removed = client.post(
        f"{LIST}/fjern",
        data={"csrf": csrf, "kind": "address", "value": "ola.nordmann@firma.no", "finn": "firma"},
    )
    assert notice(removed) == "Adressen ola.nordmann@firma.no er tatt av sperrelisten."
    assert caption(removed.text) == "Ingen av 504 passer til «firma»"


# -- hostile input: every console page answers it, never with a server error ------------------

HOSTILE = ("²", "9" * 40, "-1", "\x00", "<b>x</b>", "a" * 3000, "ÆØÅ", "\r\nX-Injected: 1")
# What the console's pages read from their addresses besides the criteria.
HOSTILE_QUERY = ("laget", "melding", "neste", "handling", "lang", "side", "finn")


def test_every_console_page_answers_hostile_query_values(
    client: TestClient, db: Database, settings: Settings, brreg: Path, tmp_path: Path
) -> None:
    from varsel.web.console_campaigns import CRITERIA_FIELDS

    campaign_id = sample_campaign(db, brreg, tmp_path)
    sign_in_as(client, db, settings, "ada", "admin")
    pages = [
        r.path.replace("{cid:int}", str(campaign_id))
        for r in client.app.routes
        if isinstance(r, ConsoleRoute)
        and "GET" in (r.methods or ())
        and "{" not in r.path.replace("{cid:int}", "")
    ]
    assert f"{PREFIX}/kampanjer/{campaign_id}" in pages
    asked = [(page, name) for page in pages for name in HOSTILE_QUERY]
    # The criteria on the page that counts a selection, which reads them all.
    asked += [(f"{PREFIX}/utvalg/telling", name) for name in CRITERIA_FIELDS]
    errors = [
        (page, name, value, answer.status_code)
        for page, name in asked
        for value in HOSTILE
        if (answer := client.get(page, params={name: value}, follow_redirects=False)).status_code
        >= 500
    ]
    assert errors == []


def test_a_store_that_fails_under_a_console_view_is_503_not_the_operators_mistake(
    settings: Settings,
) -> None:
    # PostgreSQL restarting between the session's lookup and the view's own queries: the
    # view's StoreLost (a VarselError) must not become a 400 "Det gikk ikke" with its text.
    extra = Console()

    @extra.route("/tapt", role=OPEN)
    def lost_store(page: object) -> None:
        raise StoreLost("lageret svarte ikke: server closed the connection unexpectedly")

    @extra.route("/nektet", role=OPEN)
    def refused_store(page: object) -> None:
        raise StoreError("kan ikke koble til lageret: connection refused")

    app = create_app(settings)
    app.router.routes.extend(extra.routes)
    with TestClient(app, base_url=HTTPS) as client:
        for path in ("/tapt", "/nektet"):
            answer = client.get(PREFIX + path)
            assert answer.status_code == 503, path
            assert answer.headers["retry-after"] == "10"
            assert "Prøv igjen om litt" in answer.text
            assert "connection" not in answer.text


# -- a NUL in free text: PostgreSQL's text cannot hold one, and no form may answer 500 --------


@pytest.mark.parametrize("path", ["logg-inn", "ta-i-bruk"])
def test_a_nul_in_the_name_signing_in_is_answered_as_a_name_that_does_not_exist(
    client: TestClient, db: Database, settings: Settings, path: str
) -> None:
    operator(db, settings, "kari", "author")

    def answer(name: str) -> httpx.Response:
        token = form_token(client, f"{PREFIX}/{path}")
        data = {"csrf": token, "name": name, "password": WRONG_PASSWORD, "code": "123456"}
        return client.post(f"{PREFIX}/{path}", data=data)

    unknown, with_nul = answer("ingen"), answer("kari\x00")
    assert with_nul.status_code == unknown.status_code < 500
    error = re.compile(r'<p class="error"[^>]*>([^<]+)</p>')
    assert error.findall(with_nul.text) == error.findall(unknown.text) != []


def test_a_nul_in_a_new_accounts_name_is_refused_and_in_its_address_dropped(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "ada", "admin")
    form = {"name": "ola", "role": "viewer", "password": "lang nok og rar 7!", "email": ""}
    token = form_token(client, f"{PREFIX}/brukere")
    answer = client.post(f"{PREFIX}/brukere", data={"csrf": token, **form, "name": "ola\x00"})
    assert answer.status_code == 400
    assert re.search(r'<p class="error"[^>]*>brukernavnet «ola\\x00» er ugyldig', answer.text)
    assert [u.name for u in list_users(db)] == ["ada"]
    # An address is normalised as every address is (contacts.normalise_address): control
    # characters go, as they do from a registry record.
    data = {"csrf": token, **form, "email": "ola@firma.no\x00"}
    assert client.post(f"{PREFIX}/brukere", data=data).status_code == 200
    assert get_user(db, "ola").email == "ola@firma.no"


def test_a_nul_in_a_suppression_note_is_refused_at_the_note(
    client: TestClient, db: Database, settings: Settings
) -> None:
    sign_in_as(client, db, settings, "berit", "approver")
    token = form_token(client, LIST)
    data = {"csrf": token, "address": "ola@firma.no", "note": "ringte\x00"}
    answer = client.post(LIST, data=data)
    assert answer.status_code == 400
    error = re.search(
        r'<p class="error" id="note-feil"><span[^>]*>[^<]*</span>([^<]+)</p>', answer.text
    )
    assert error is not None
    assert (
        error.group(1) == "Notatet har et NUL-tegn (\\u0000), som ikke kan lagres; skriv det uten."
    )
    assert 'aria-describedby="note-hint note-feil"' in answer.text
    add_manual(db, SuppressionKind.ADDRESS, "ola@firma.no", actor="test")
    removed = client.post(
        f"{LIST}/fjern",
        data={"csrf": token, "kind": "address", "value": "ola@firma.no", "note": "\x00"},
    )
    assert removed.status_code == 400
    assert "Notatet har et NUL-tegn (\\u0000)" in removed.text
    assert [e.value for e in entries(db)] == ["ola@firma.no"]
