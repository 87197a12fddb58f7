from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from varsel.db import Database
from varsel.outbox import record_event
from varsel.web.site import Store, TranslateLiterals, environment, gettext


def test_group_commit_answers_every_writer_after_its_row_is_committed(
    db: Database, db_url: str
) -> None:
    store = Store(db_url)
    committed: list[bool] = []

    def request(n: int) -> int:
        def work(conn: Database) -> int:
            record_event(conn, None, None, "test", {"n": n})
            return n * 10

        result = store.write(work)
        # Another connection sees the row as soon as the writer has its answer.
        with store.connection() as other:
            committed.append(
                other.scalar("SELECT count(*) FROM events WHERE detail = ?", (f'{{"n": {n}}}',))
                == 1
            )
        return result

    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(request, range(200)))
    finally:
        store.close()
    assert results == [n * 10 for n in range(200)]
    assert committed == [True] * 200
    assert db.scalar("SELECT count(*) FROM events WHERE kind = 'test'") == 200


def test_a_failing_writer_spoils_no_other_in_its_group(db: Database, db_url: str) -> None:
    store = Store(db_url)
    started = threading.Barrier(4)

    def request(n: int) -> str:
        def work(conn: Database) -> str:
            record_event(conn, None, None, "test", {"n": n})
            if n == 2:
                raise ValueError("job 2 fails")
            return "ok"

        started.wait()
        try:
            return store.write(work)
        except ValueError as e:
            return str(e)

    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(request, range(4)))
    finally:
        store.close()
    assert results == ["ok", "ok", "job 2 fails", "ok"]
    assert sorted(r[0] for r in db.query("SELECT detail FROM events WHERE kind = 'test'")) == [
        '{"n": 0}',
        '{"n": 1}',
        '{"n": 3}',
    ]


@pytest.mark.parametrize(
    ("language", "expected"),
    [("nb", "Sjekk om en e-post er ekte"), ("nn", "Sjekk om ein e-post er ekte")],
)
def test_literal_translations_are_compiled_into_the_templates(language: str, expected: str) -> None:
    env = environment(language)
    assert any(isinstance(e, TranslateLiterals) for e in env.extensions.values())
    source = env.loader.get_source(env, "verify.html")[0]  # type: ignore[union-attr]
    compiled = env.compile(source, raw=True)
    assert repr(expected)[1:-1] in compiled
    # Nynorsk: the Bokmål msgid is gone; nothing is looked up when the page is rendered.
    assert (language == "nb") == ("Sjekk om en e-post er ekte" in compiled)
    assert gettext(language, "Sjekk om en e-post er ekte") == expected
