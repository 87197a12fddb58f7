"""Small helpers shared by several test modules."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jinja2.sandbox import SecurityError

from varsel import unit
from varsel.config import Settings
from varsel.db import Database
from varsel.keys import key_dir
from varsel.sandbox import operator_sandbox
from varsel.send_config import SendOptions

if TYPE_CHECKING:
    from starlette.testclient import TestClient


def campaign_toml(
    *,
    name: str = "Test",
    campaign: str = "",
    sender: str = "",
    organisation: str = "Oslo politidistrikt og NSR",
    title: str = "Sikkerhetsråd",
    document: str = "",
    public: bool = True,
    limits: str = "",
    segment: str = "",
) -> str:
    """A test campaign's definition: the pilot's sender and document, Oslo police district.

    Each keyword adds lines to its section (`public=False` leaves the public base URL out,
    `limits` adds a [limits] section); the text has no braces of its own, so placeholders in
    the keywords can still be filled with str.format.
    """
    parts = [
        f'[campaign]\nname = "{name}"\n{campaign}',
        '[sender]\naddress = "sikkerhet@nsr-org.no"\nname = "NSR"\n'
        f'organisation = "{organisation}"\n{sender}',
        f'[document]\ntitle = "{title}"\nurl = "https://www.politiet.no/rad.pdf"\n{document}',
    ]
    if public:
        parts.append('[public]\nbase_url = "https://www.politiet.no/varsel"\n')
    if limits:
        parts.append(f"[limits]\n{limits}")
    parts.append(f'[segment]\npolice_district = ["oslo"]\n{segment}')
    return "\n".join(part if part.endswith("\n") else part + "\n" for part in parts)


# Sends in tests: two connections, no rate limit to speak of, quick retries, built in-process.
FAST = SendOptions(connections=2, rate_per_second=1000, retry_base_seconds=0.05, build_processes=0)


UNKNOWN = "AAAA-AAAA-AAA5"  # well formed (its check symbol is right), and no message has it


def key_settings(tmp_path: Path) -> Settings:
    """Default settings, with the DKIM keys kept in the test's folder."""
    return Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))


def sample_campaign(db: Database, brreg: Path, tmp_path: Path, text: str | None = None) -> int:
    """The registry sample imported and a campaign made of `text` (campaign_toml()); its id."""
    from varsel.campaign import create_campaign
    from varsel.registry import import_dump

    settings = key_settings(tmp_path)
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml() if text is None else text, "utf-8")
    return create_campaign(db, settings, path).campaign.id


def import_with_hostile_name(db: Database, brreg: Path, tmp_path: Path) -> dict[str, Any]:
    """The registry sample, with Statnett (which has an e-mail address) named by an encoded
    word that would add a Bcc header if it stood unchecked in a subject; Statnett's record."""
    import json

    from varsel.registry import import_dump

    records = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))
    (statnett,) = [r for r in records if r.get("epostadresse") == "firmapost@statnett.no"]
    statnett["navn"] = "=?utf-8?q?x=0D=0ABcc:_evil@x.test?= SF"
    dump = tmp_path / "enheter.json"
    dump.write_text(json.dumps(records), "utf-8")
    import_dump(db, dump)
    return dict(statnett)


def units(db: Database) -> dict[str, tuple[Any, ...]]:
    """Every unit's kept columns, by orgnr."""
    cols = ", ".join(unit.RECORD_COLUMNS)
    return {r[0]: tuple(r) for r in db.query(f"SELECT {cols} FROM units ORDER BY orgnr")}


def unit_row(db: Database, orgnr: str) -> dict[str, Any]:
    """One unit's row as a dict."""
    cols = ", ".join(unit.UNIT_COLUMNS)
    row = db.query_one(f"SELECT {cols} FROM units WHERE orgnr = ?", (orgnr,))
    assert row is not None
    return dict(zip(unit.UNIT_COLUMNS, row, strict=True))


def dns_for(settings: Settings) -> Callable[..., bytes]:
    """A dkimpy DNS function answering with the TXT record of the test campaign's key."""
    record = next(key_dir(settings).glob("*.txt")).read_text("ascii")
    txt = "".join(re.findall(r'"([^"]*)"', record)).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"varsel._domainkey.nsr-org.no."
        return txt

    return dnsfunc


PASSWORD = "riktig-hest-batteri-stift"  # noqa: S105 - the test accounts' password


def operator(db: Database, settings: Settings, name: str, role: str) -> str:
    """An enrolled account (confirmed with the current code); returns its TOTP secret."""
    import pyotp

    from varsel.accounts import Role, add_user
    from varsel.signin import confirm_totp

    enrolment = add_user(db, settings, name, Role(role), PASSWORD, actor="test")
    confirm_totp(db, settings, name, PASSWORD, pyotp.TOTP(enrolment.secret).now())
    return enrolment.secret


def next_code(secret: str) -> str:
    """The next time step's code: accepted (once) after the code that confirmed enrolment."""
    import time

    import pyotp

    return str(pyotp.TOTP(secret).at(time.time() + 30))


# Test schemas' sessions commit without waiting for the WAL's fsync: what a commit makes visible
# is the same, only a crash of the server could forget the last ones, which no test does.
PG_OPTIONS = "-csynchronous_commit=off"


def schema_url(base: str, schema: str) -> str:
    """The URL of a test schema on the test database."""
    return f"{base}?options={quote(f'-csearch_path={schema} {PG_OPTIONS}')}"


def server_default_url(url: str) -> str:
    """A test store's URL with the server's own commit setting (for tests of durability)."""
    return url.replace(quote(f" {PG_OPTIONS}"), "")


# -- accounts (test_accounts, test_signin) ------------------------------------------------

T0 = datetime(2025, 3, 3, 11, 0, 0, tzinfo=UTC)  # 12:00 in Oslo
GENERIC = "feil brukernavn, passord eller engangskode"


def light_settings() -> Settings:
    """Real argon2id with less memory than in production, so that many sign-ins are quick."""
    return Settings.load(environ={}, password_memory_kib=8192)


def totp_code(secret: str, at: datetime) -> str:
    """The authenticator app's code at a moment."""
    import pyotp

    return str(pyotp.TOTP(secret).at(at))


def enrolled_at_t0(
    db: Database, settings: Settings, name: str = "kari", role: str = "author"
) -> str:
    """An account confirmed at T0; later codes must be from later time steps. Its secret."""
    from varsel.accounts import Role, add_user
    from varsel.signin import confirm_totp

    enrolment = add_user(db, settings, name, Role(role), PASSWORD, actor="admin")
    confirm_totp(db, settings, name, PASSWORD, totp_code(enrolment.secret, T0), now=T0)
    return enrolment.secret


def audit_actions(db: Database) -> list[tuple[str, str, str | None]]:
    """(actor, action, object) of every audit entry, in order."""
    from varsel import audit

    return [(e.actor, e.action, e.object) for e in audit.entries(db)]


# -- the console (tests/test_web_console*.py) -----------------------------------------------

HTTPS = "https://testserver"  # the session cookie is __Host- prefixed and Secure: HTTPS only


def console_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings the console can sign in with, on `database_url`; `overrides` change fields."""
    fields: dict[str, Any] = {
        "database_url": database_url,
        "dkim_key_dir": str(tmp_path / "keys"),
        "secret_key": "console test secret",  # a key for these tests only
        "password_memory_kib": 8192,  # real argon2id, with less memory than production's
        "allow_test_domains": True,
    }
    return Settings.load(environ={}, **(fields | overrides))


def form_token(client: TestClient, path: str) -> str:
    """The CSRF token of the form on the page at `path`."""
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def sign_in(client: TestClient, name: str, code: str, password: str = PASSWORD) -> str:
    """Post the sign-in form; returns the answer's error text or its redirect target."""
    from varsel.web.console_auth import PREFIX

    token = form_token(client, f"{PREFIX}/logg-inn")
    answer = client.post(
        f"{PREFIX}/logg-inn",
        data={"csrf": token, "name": name, "password": password, "code": code},
        follow_redirects=False,
    )
    if answer.status_code == 303:
        return answer.headers["location"]
    error = re.search(r'<p class="error" role="alert"[^>]*>([^<]+)</p>', answer.text)
    assert error is not None, answer.text
    return error.group(1).replace("&#34;", '"').replace("&#39;", "'")


def sign_in_as(client: TestClient, db: Database, settings: Settings, name: str, role: str) -> str:
    """A new enrolled account `name` with `role`, signed in on `client`; sign_in's answer."""
    return sign_in(client, name, next_code(operator(db, settings, name, role)))


def console_campaign(
    db: Database, settings: Settings, tmp_path: Path, brreg: Path, created_by: str = "kari"
) -> int:
    """test_web_public's campaign on the registry sample, written by `created_by`; its id."""
    from test_web_public import CAMPAIGN
    from varsel.campaign import create_campaign
    from varsel.registry import import_dump

    import_dump(db, brreg / "enheter-sample.json")
    (tmp_path / "rad.pdf").write_bytes(b"%PDF-1.4\n")
    (tmp_path / "c.toml").write_text(CAMPAIGN, "utf-8")
    return create_campaign(db, settings, tmp_path / "c.toml", created_by=created_by).campaign.id


def kari_campaign_berit_signed_in(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> int:
    """A campaign written by kari on the registry sample, with approver berit signed in; its id."""
    cid = console_campaign(db, settings, tmp_path, brreg, created_by="kari")
    sign_in_as(client, db, settings, "berit", "approver")
    return cid


def approved_by_berit(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, brreg: Path
) -> int:
    """kari_campaign_berit_signed_in(), approved by berit (four eyes); its id."""
    from varsel.accounts import get_user
    from varsel.approval import approve

    cid = kari_campaign_berit_signed_in(client, db, settings, tmp_path, brreg)
    berit = get_user(db, "berit")
    assert berit is not None
    approve(db, settings, cid, berit)
    return cid


def in_thread(run: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    """run() on a started thread, and the list that will hold what it raised."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            run()
        except BaseException as e:  # handed to the test
            errors.append(e)

    thread = threading.Thread(target=body)
    thread.start()
    return thread, errors


def until(condition: Callable[[], bool], seconds: float) -> float:
    """Wait for a condition (asserting it comes within seconds); how long it took."""
    import time

    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "timed out"
        time.sleep(0.02)
    return time.monotonic() - started


def heading(html: str) -> str:
    """The page's h1."""
    found = re.search(r"<h1[^>]*>([^<]+)</h1>", html)
    assert found is not None, html
    return found.group(1)


def page_form(client: TestClient, path: str) -> dict[str, str]:
    """The campaign page's CSRF token and the fingerprint it shows, as a form would post them."""
    page = client.get(path).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page)
    assert csrf is not None
    return {"csrf": csrf.group(1), "digest": digest.group(1) if digest else ""}


S = TypeVar("S")


class LoopbackServer(ThreadingHTTPServer, Generic[S]):
    """An HTTP server on 127.0.0.1 (a free port) whose handlers find the test's `state`."""

    # Handler threads are joined by server_close(), so none outlives its test.
    daemon_threads = False

    def __init__(self, handler: type[BaseHTTPRequestHandler], state: S) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.state = state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def serving(server: LoopbackServer[S]) -> Iterator[LoopbackServer[S]]:
    """Serve on a thread of its own until the block ends; then stop and close the server."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def end_connections(postgres_base: str, name: str) -> int:
    """End every connection whose application_name is `name`, as a restart of PostgreSQL
    does; how many it ended. pg_terminate_backend with a timeout waits until each has gone,
    so what comes next meets what it would meet after a restart."""
    import psycopg

    with psycopg.connect(postgres_base, autocommit=True, application_name="t") as admin:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
            "FROM pg_stat_activity WHERE application_name = %s",
            (name,),
        ).fetchone()
    assert ended is not None
    return int(ended[0])


def make_tls(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA file and a server context with a certificate it signed for 127.0.0.1 (in folder)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "varsel test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = folder / "server.pem"
    cert_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file)
    return ca_file, context


def sandbox_refusal(source: str) -> str:
    """The operator sandbox's refusal of the template, which must come within a fraction of a
    second."""
    import time

    started = time.process_time()
    with pytest.raises(SecurityError) as caught:
        operator_sandbox().from_string(source).render()
    # The bounds trip before the work: a template that got to allocate first takes seconds.
    assert time.process_time() - started < 0.5
    return str(caught.value)
