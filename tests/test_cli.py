"""cli.py's own part: how every command's errors and store are handled (VarselGroup, State)."""

from __future__ import annotations

import time
from urllib.parse import quote

import click
import pytest
from click.testing import CliRunner

from varsel.cli import State, VarselGroup, pass_state
from varsel.config import Settings
from varsel.db import connect


@pytest.mark.postgres
def test_a_store_that_ends_an_idle_transaction_is_one_line_and_exit_status_75(
    pg_url: str,
) -> None:
    connect(pg_url).close()  # a varsel store
    # psycopg does not count this end of the connection as an OperationalError.
    url = pg_url + quote(" -cidle_in_transaction_session_timeout=100")

    @click.group(cls=VarselGroup)
    @click.pass_context
    def group(ctx: click.Context) -> None:
        ctx.obj = State(lambda: Settings.load(environ={}, database_url=url))

    @group.command()
    @pass_state
    def slow(state: State) -> None:
        with state.db.transaction():
            state.db.execute("SELECT 1")
            time.sleep(0.5)  # as a command that reads a file between two statements
            state.db.execute("SELECT 1")

    result = CliRunner().invoke(group, ["slow"])
    assert result.exit_code == 75, result.output
    assert result.output == (
        f"varsel: lageret {url}: tjeneren avsluttet forbindelsen: en transaksjon sto ubrukt "
        "for lenge (idle_in_transaction_session_timeout); det som var fullført, er lagret, og "
        "kommandoen kan kjøres igjen når lageret er i orden\n"
    )
