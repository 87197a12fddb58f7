"""The SMTP channel against Postfix's smtp-source, both sending to Postfix's smtp-sink.

    .venv/bin/python -m bench.bench_smtp [--messages 5000] [--sessions 8] [--size 10000]

Installs Postfix's test tools if they are missing (apt-get, without starting Postfix), starts
`smtp-sink` on 127.0.0.1, then, several times each:
- `smtp-source -d -s K -m M -l SIZE`: K sessions in C sending M messages (the reference);
- varsel's SmtpConnection: K connections sending M pre-built messages of the same size;
- aiosmtplib the same way, when it is installed (for comparison only; varsel does not use it).
Prints a Markdown table of messages per second and client CPU per message (medians), and the
ratio to smtp-source.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from varsel.channel.smtp import SmtpConnection
from varsel.channel.smtp_relay import RelayConfig

SMTP_SINK = Path("/usr/sbin/smtp-sink")
SMTP_SOURCE = Path("/usr/sbin/smtp-source")
HOST = "127.0.0.1"
SENDER = "bench@varsel.example"
RECIPIENT = "mottaker@varsel.example"
RUN_TIMEOUT = 300.0  # seconds: one run that takes longer has gone wrong
POLICY_RC = Path("/usr/sbin/policy-rc.d")


def ensure_postfix_tools() -> None:
    """Install Postfix for smtp-sink and smtp-source, never letting it start its daemon."""
    if SMTP_SINK.exists() and SMTP_SOURCE.exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # "No configuration": Postfix installs without a main.cf and so has nothing to run.
    subprocess.run(
        ["debconf-set-selections"],
        input=b"postfix postfix/main_mailer_type select No configuration\n",
        check=False,
    )
    # Debian's way to keep a package's install from starting its service.
    made_policy = not POLICY_RC.exists()
    if made_policy:
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
    try:
        install = ["apt-get", "install", "-y", "--no-install-recommends", "postfix"]
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    finally:
        if made_policy:
            POLICY_RC.unlink()
    if not (SMTP_SINK.exists() and SMTP_SOURCE.exists()):
        sys.exit("postfix is installed, but smtp-sink or smtp-source is missing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_sink(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """smtp-sink on 127.0.0.1:port, with PIPELINING (its default), until the block ends."""
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [str(SMTP_SINK), *user, "-h", "sink.varsel.example", f"{HOST}:{port}", "1000"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(10)


def smtp_source(port: int, messages: int, sessions: int, size: int) -> tuple[float, float]:
    """Messages per second and CPU µs per message of smtp-source (which does not pipeline)."""
    command = [str(SMTP_SOURCE), "-d", "-s", str(sessions), "-m", str(messages)]
    command += ["-l", str(size), "-M", "varsel.example", "-f", SENDER, "-t", RECIPIENT]
    cpu = _children_cpu()
    started = time.perf_counter()
    subprocess.run([*command, f"{HOST}:{port}"], check=True, timeout=RUN_TIMEOUT)
    elapsed = time.perf_counter() - started
    return messages / elapsed, (_children_cpu() - cpu) / messages * 1e6


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_messages(count: int, size: int) -> list[bytes]:
    """Distinct 7-bit messages with CRLF lines: headers as smtp-source sends, `size` of body."""
    line = b"Forebyggende sikkerhetsrad: skriv adressen selv, og klikk ikke pa lenker i e-post.\r\n"
    body = (line * (size // len(line) + 1))[:size]
    body = body[: body.rfind(b"\r\n") + 2]
    messages = []
    for n in range(count):
        head = (
            f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\n"
            f"Date: Mon, 2 Jan 2023 09:00:00 +0100\r\n"
            f"Message-ID: <{n}.bench@varsel.example>\r\nSubject: Sikkerhetsrad\r\n\r\n"
        )
        messages.append(head.encode("ascii") + body)
    return messages


async def varsel_client(port: int, messages: list[bytes], sessions: int) -> tuple[float, float]:
    """Messages per second for varsel's SmtpConnection over `sessions` connections."""
    config = RelayConfig(HOST, port, "none", helo_name="varsel.example")

    async def session(share: list[bytes]) -> None:
        connection = await SmtpConnection.open(config)
        try:
            for data in share:
                outcome = await connection.send(SENDER, RECIPIENT, data)
                if outcome.reply is None or outcome.reply.code != 250:
                    raise RuntimeError(f"not accepted: {outcome}")
        finally:
            await connection.close()

    return await _timed(session, messages, sessions)


async def varsel_client_ahead(
    port: int, messages: list[bytes], sessions: int
) -> tuple[float, float]:
    """As varsel_client, each message's final dot carrying the next one's envelope, as the
    sender sends; the messages are SMTP-ready (CRLF, no leading dots), as the factory's are."""
    config = RelayConfig(HOST, port, "none", helo_name="varsel.example")

    async def session(share: list[bytes]) -> None:
        connection = await SmtpConnection.open(config)
        try:
            for n, data in enumerate(share):
                then = (SENDER, RECIPIENT, share[n + 1]) if n + 1 < len(share) else None
                outcome = await connection.send(SENDER, RECIPIENT, data, then=then, smtp_ready=True)
                if outcome.reply is None or outcome.reply.code != 250:
                    raise RuntimeError(f"not accepted: {outcome}")
        finally:
            await connection.close()

    return await _timed(session, messages, sessions)


async def aiosmtplib_client(port: int, messages: list[bytes], sessions: int) -> tuple[float, float]:
    """Messages per second for aiosmtplib.SMTP.sendmail over `sessions` connections."""
    import aiosmtplib

    async def session(share: list[bytes]) -> None:
        client = aiosmtplib.SMTP(hostname=HOST, port=port, local_hostname="varsel.example")
        await client.connect()
        try:
            for data in share:
                await client.sendmail(SENDER, [RECIPIENT], data)
        finally:
            await client.quit()

    return await _timed(session, messages, sessions)


async def _timed(
    session: Callable[[list[bytes]], Awaitable[None]], messages: list[bytes], sessions: int
) -> tuple[float, float]:
    """Messages per second and this process's CPU µs per message."""
    shares = [messages[i::sessions] for i in range(sessions)]
    cpu = time.process_time()
    started = time.perf_counter()
    async with asyncio.timeout(RUN_TIMEOUT):
        await asyncio.gather(*(session(share) for share in shares))
    elapsed = time.perf_counter() - started
    return len(messages) / elapsed, (time.process_time() - cpu) / len(messages) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000, help="messages per run (M)")
    parser.add_argument("--sessions", type=int, default=8, help="concurrent connections (K)")
    parser.add_argument("--size", type=int, default=10_000, help="body bytes per message")
    parser.add_argument("--runs", type=int, default=3, help="runs per client; medians shown")
    args = parser.parse_args()
    if not 0 < args.messages <= 200_000 or not 0 < args.sessions <= 256:
        sys.exit("--messages must be 1..200000 and --sessions 1..256")
    ensure_postfix_tools()
    messages = build_messages(args.messages, args.size)
    clients: dict[str, Callable[[int], tuple[float, float]]] = {
        "smtp-source (C)": lambda port: smtp_source(port, args.messages, args.sessions, args.size),
        "varsel SmtpConnection": lambda port: asyncio.run(
            varsel_client(port, messages, args.sessions)
        ),
        "varsel, next envelope with the dot": lambda port: asyncio.run(
            varsel_client_ahead(port, messages, args.sessions)
        ),
    }
    if _importable("aiosmtplib"):
        clients["aiosmtplib (sendmail)"] = lambda port: asyncio.run(
            aiosmtplib_client(port, messages, args.sessions)
        )
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    port = free_port()
    with smtp_sink(port):
        # Not timed: imports, first calls and the sink's first connections.
        asyncio.run(varsel_client(port, messages[:200], args.sessions))
        for _ in range(args.runs):
            for name, measure in clients.items():
                results[name].append(measure(port))
    reference = statistics.median(rate for rate, _ in results["smtp-source (C)"])
    print(
        f"{args.messages:,} messages of {len(messages[0]):,} bytes over {args.sessions} "
        f"connections to Postfix smtp-sink on loopback; medians of {args.runs} runs.\n"
    )
    print("| client | messages/s | ratio to smtp-source | CPU µs/message | runs (msg/s) |")
    print("|---|---:|---:|---:|---|")
    for name, values in results.items():
        rate = statistics.median(r for r, _ in values)
        cpu = statistics.median(c for _, c in values)
        runs = ", ".join(f"{r:,.0f}" for r, _ in values)
        print(f"| {name} | {rate:,.0f} | {rate / reference:.2f} | {cpu:.0f} | {runs} |")
    print(
        "\nCPU is the client's own (user + system), without the sink's; smtp-source waits for "
        "each reply, varsel pipelines MAIL, RCPT and DATA (two round trips per message), "
        "and with the next envelope sent with the final dot, one."
    )


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
