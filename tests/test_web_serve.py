"""`varsel serve` as production runs it: several workers, answers without Nagle's delay."""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from varsel.cli import cli
from varsel.db import connect
from varsel.web import listening_socket

# Nagle's algorithm against the client's delayed ACK held each answer ~40 ms; without it an
# answer from a loopback server takes a few milliseconds even on a busy machine.
FAST_ENOUGH = 0.015  # seconds, the median of the answers on one connection
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def times_of_answers(port: int, n: int = 30) -> list[float]:
    """Seconds each of n GET /kontroll took, one after another on one kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    took = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            connection.request("GET", "/kontroll")
            answer = connection.getresponse()
            body = answer.read()
            took.append(time.perf_counter() - start)
            assert answer.status == 200
            assert b"Koden fra e-posten, brevet eller Altinn-meldingen" in body
    finally:
        connection.close()
    return took


Start = Callable[[list[str], int], subprocess.Popen[bytes]]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Start]:
    """Starts a server command on a port and waits until it listens; stops it afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
        connect(str(tmp_path / "varsel.db")).close()  # serve refuses a store that is not there
        env = {
            **os.environ,
            "VARSEL_DATABASE_URL": str(tmp_path / "varsel.db"),
            "VARSEL_SECRET_KEY": "test secret",
        }
        process = subprocess.Popen(command, env=env, cwd=tmp_path)
        started.append(process)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"{command} stopped with status {process.returncode}"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return process
            except OSError:
                assert time.monotonic() < deadline, f"{command} did not listen in time"
                time.sleep(0.1)

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_command(port: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "varsel", "serve", "--port", str(port), *options]


@pytest.mark.slow
def test_varsel_serve_with_two_workers_answers_without_delay(served: Start) -> None:
    port = free_port()
    served(serve_command(port, "--workers", "2"), port)
    took = times_of_answers(port)
    assert statistics.median(took) < FAST_ENOUGH, [f"{t * 1000:.1f} ms" for t in took]


@pytest.mark.slow
def test_two_workers_on_asyncio_and_h11_answer_without_delay(served: Start) -> None:
    # uvloop sets TCP_NODELAY itself; asyncio does only for a socket made with IPPROTO_TCP,
    # which uvicorn's own socket for several workers is not: this is where answers waited.
    port = free_port()
    code = (
        "from varsel.web import serve; "
        f"serve('varsel.web:app_from_environment', host='127.0.0.1', port={port}, "
        "workers=2, loop='asyncio', http='h11')"
    )
    served([sys.executable, "-c", code], port)
    took = times_of_answers(port)
    assert statistics.median(took) < FAST_ENOUGH, [f"{t * 1000:.1f} ms" for t in took]


def test_the_listening_socket_hands_out_connections_with_tcp_nodelay() -> None:
    with listening_socket("127.0.0.1", 0) as listener:
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
                assert accepted.proto == socket.IPPROTO_TCP


# -- what `varsel serve` refuses: one line, exit status 2, nothing changed -------------------


def serve_cli(tmp_path: Path, *options: str, **env: str | None) -> Result:
    store = tmp_path / "varsel.db"
    return CliRunner().invoke(cli, ["--db", str(store), "serve", *options], env=env)


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve_cli(tmp_path, "--host", "127.0.0.1", "--port", str(port))
    assert result.exit_code == 2
    assert result.output == (
        f"varsel: Kan ikke lytte på 127.0.0.1:{port}: porten er i bruk av et annet program\n"
    )
    assert not (tmp_path / "varsel.db").exists()  # the store was not touched


def test_serve_on_a_host_that_does_not_resolve_says_so_in_one_line(tmp_path: Path) -> None:
    result = serve_cli(tmp_path, "--host", "ingen-slik-vert.invalid", "--port", "8123")
    assert result.exit_code == 2
    assert result.output == (
        "varsel: Kan ikke lytte på ingen-slik-vert.invalid:8123: finner ikke vertsnavnet\n"
    )
    assert not (tmp_path / "varsel.db").exists()


def test_serve_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    # A mistyped --db would have served an empty store, which calls every genuine code unknown.
    result = serve_cli(tmp_path, "--port", str(free_port()))
    assert result.exit_code == 2
    assert result.output == (
        f"varsel: lageret {tmp_path / 'varsel.db'} finnes ikke (lag det med «varsel init»)\n"
    )
    assert not (tmp_path / "varsel.db").exists()


def test_serve_refuses_several_workers_without_a_secret_key(tmp_path: Path) -> None:
    # Each worker would hash visitors' addresses with its own random key: the per-visitor
    # limits would be counted per worker (20 of 30 lookups got through a limit of 10).
    result = serve_cli(
        tmp_path, "--port", str(free_port()), "--workers", "2", VARSEL_SECRET_KEY=None
    )
    assert result.exit_code == 2
    assert result.output == (
        "varsel: --workers 2 krever VARSEL_SECRET_KEY: uten den har hver prosess sin egen "
        "nøkkel, og grensene per besøkende, lenkene og skjemaene holder ikke på tvers av dem\n"
    )
    assert not (tmp_path / "varsel.db").exists()
