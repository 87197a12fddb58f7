"""cli.py's own part: how every command's errors and store are handled (VarselGroup, State)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
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


# -- Ctrl-C while the command is still loading ------------------------------------------------

# Put on PYTHONPATH as sitecustomize: Python's own SIGINT handler, as in a terminal (a
# background job starts with SIGINT ignored), and an import of click, the first thing the CLI
# loads, that says so and waits: the test's Ctrl-C then lands during the CLI's imports.
_PAUSE_AT_IMPORT = """
import signal, sys, time

signal.signal(signal.SIGINT, signal.default_int_handler)


class PauseAtClick:
    def find_spec(self, name, path=None, target=None):
        if name == "click":
            sys.meta_path.remove(self)
            sys.stdout.write("loading\\n")
            sys.stdout.flush()
            time.sleep(30)
        return None


sys.meta_path.insert(0, PauseAtClick())
"""


@pytest.mark.parametrize(
    "command",
    [
        [str(Path(sys.executable).parent / "varsel"), "--version"],  # the console script
        [sys.executable, "-m", "varsel", "--version"],
    ],
    ids=["console-script", "python-m"],
)
def test_ctrl_c_while_the_cli_loads_is_one_line_and_exit_status_130(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "sitecustomize.py").write_text(_PAUSE_AT_IMPORT, "utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == "loading\n"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert (process.returncode, stdout, stderr) == (130, "", "varsel: avbrutt\n")
