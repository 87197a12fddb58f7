"""Headers and answers the site gives every path alike: caching, 405s, 413s, no slash redirects.

The real app over a real store (SQLite and PostgreSQL), through Starlette's test client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from varsel.config import Settings
from varsel.db import connect
from varsel.web import MAX_BODY, create_app
from varsel.web.headers import SECURITY_HEADERS

PUBLIC = "https://www.politiet.no/varsel"


def make_client(tmp_path: Path, db_url: str, **changes: object) -> TestClient:
    settings = Settings.load(
        environ={},
        database_url=db_url,
        dkim_key_dir=str(tmp_path / "keys"),
        secret_key="test secret",  # noqa: S106 -- a key for this test only
        **changes,
    )
    return TestClient(create_app(settings), base_url="https://testserver")


@pytest.fixture
def client(tmp_path: Path, db_url: str) -> Iterator[TestClient]:
    with make_client(tmp_path, db_url) as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/kontroll", "/varsler", "/varsler.json", "/nowhere"])
def test_nothing_but_the_static_files_is_cached(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.headers["cache-control"] == "no-store", path
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")


def test_the_static_files_may_be_cached(client: TestClient) -> None:
    page = client.get("/")
    stylesheet = page.text.split('rel="stylesheet" href="', 1)[1].split('"', 1)[0]
    answer = client.get(stylesheet)
    assert answer.status_code == 200
    assert "cache-control" not in answer.headers


@pytest.mark.parametrize("path", ["/kontroll/", "/varsler/", "/dokument/", "/tilbakemelding/"])
def test_a_slash_too_many_is_not_redirected_anywhere(client: TestClient, path: str) -> None:
    # Starlette's redirect built its Location from the Host header, and dropped the root path.
    answer = client.get(path, headers={"host": "evil.example"}, follow_redirects=False)
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert "<h1>Siden finnes ikke</h1>" in answer.text


def test_no_redirect_under_the_root_path_either(tmp_path: Path, db_url: str) -> None:
    with make_client(tmp_path, db_url, public_base_url=PUBLIC) as client:
        answer = client.get(
            "/varsel/kontroll/", headers={"host": "evil.example"}, follow_redirects=False
        )
    assert answer.status_code == 404
    assert "location" not in answer.headers


def test_a_method_a_page_does_not_take_gets_405_with_allow(client: TestClient) -> None:
    answer = client.request("DELETE", "/kontroll?lang=en")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert '<html lang="en">' in answer.text


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/tilbakemelding", "GET, HEAD, POST"),
        ("/dokument", "GET, HEAD, POST"),
        ("/avmelding/token", "GET, HEAD, POST"),
        ("/konsoll/logg-inn", "GET, HEAD, POST"),
        ("/konsoll/logg-ut", "POST"),
    ],
)
def test_a_405_names_every_method_the_page_takes(
    client: TestClient, path: str, methods: str
) -> None:
    # A page whose GET and POST are routes of their own: Starlette named only the first's.
    answer = client.request("PUT", path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == methods


def test_a_body_over_the_limit_gets_the_sites_page_in_the_visitors_language(
    client: TestClient,
) -> None:
    body = b"kommentar=" + b"a" * (MAX_BODY + 1)
    answer = client.post(
        "/tilbakemelding?lang=en",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert 'lang="en"' in answer.text
    assert "Content Too Large" not in answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_the_language_links_do_not_echo_a_huge_query(client: TestClient) -> None:
    huge = "x" * 20_000
    answer = client.get(f"/varsler?x={huge}&y=kort")
    assert answer.status_code == 200
    assert huge not in answer.text
    assert len(answer.text) < 20_000
    assert "y=kort&amp;lang=en" in answer.text  # a short value is still carried on


def test_the_page_for_an_error_of_ours_has_the_security_headers_too(
    tmp_path: Path, db_url: str
) -> None:
    # Starlette answers an exception no view caught outside the app's middleware, where
    # SecurityHeaders never saw the 500 page.
    settings = Settings.load(environ={}, database_url=db_url, dkim_key_dir=str(tmp_path / "keys"))
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        with connect(db_url) as db, db.transaction():
            db.execute("ALTER TABLE deliveries RENAME TO deliveries_gone")  # a broken store
        answer = client.get("/varsler?lang=en")
    assert answer.status_code == 500
    assert "<h1>Something went wrong</h1>" in answer.text
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value, name
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "link"),
    [
        ("//evil.example/x", "/evil.example/x?lang=nn"),
        ("///evil.example", "/evil.example?lang=nn"),
        ("/%09/evil.example", "/%09/evil.example?lang=nn"),  # a browser drops tabs from a URL
        ("/%0A/evil.example", "/%0A/evil.example?lang=nn"),
        ("/%5C/evil.example", "/%5C/evil.example?lang=nn"),
        ("/a%00b%20c%3Fd%23e", "/a%00b%20c%3Fd%23e?lang=nn"),
        ("/%C3%A6", "/%C3%A6?lang=nn"),
    ],
)
def test_the_language_links_of_a_page_that_does_not_exist_stay_on_the_site(
    client: TestClient, path: str, link: str
) -> None:
    # "//evil.example/x" as a link is another host's page: a 404 must not offer one.
    answer = client.get(f"https://testserver{path}")
    assert answer.status_code == 404
    assert f'href="{link}"' in answer.text
