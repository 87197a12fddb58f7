"""Message building and DKIM signing against the machine's raw RSA-2048 signing rate.

    .venv/bin/python -m bench.bench_message [--seconds 2] [--runs 3]

Measures, each for a fixed time and several times (the median is printed):
- messages built per second on one core, unsigned, signed with RSA-2048, and signed with
  RSA-2048 plus Ed25519;
- raw RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second with `cryptography`, on one core and
  on all cores (a process pool of os.cpu_count() workers, each signing for the same fixed time);
- RSA-signed messages built per second on all cores, the same way.
RSA signing is the floor under the cost of a signed message, so the all-core raw rate is the
ceiling a sender can reach; the last column says how close message building comes to it.
"Per item" is wall time: on all cores, the time between two finished items.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from varsel import codes
from varsel.dkim import DkimKey, Signer, generate_key, load_key
from varsel.message import MessageFactory, MessageSpec, Recipient, UnitRef
from varsel.testing import sample_spec

NAMES = [
    "BÆRUM BAKERI AS",
    "REGNSKAPSKONTORET ØST AS",
    "SNEKKER OLSEN",
    "NORDMANN ELEKTRO OG VVS AS",
    "FRISØR SALONG MARI",
    "OSLO TANNHELSE DA",
    "ASKER EIENDOMSFORVALTNING AS",
    "KAFÉ BLÅ ENK",
]
MUNICIPALITIES = ["Oslo", "Asker", "Bærum"]


def make_spec() -> MessageSpec:
    return sample_spec()


def make_recipients(count: int = 1000) -> list[Recipient]:
    """Recipients like the pilot's: mostly one unit, some addresses shared by three."""
    recipients = []
    for i in range(count):
        shared = 3 if i % 20 == 0 else 1
        units = tuple(
            UnitRef(
                f"{910000000 + i * 7 + j}",
                f"{NAMES[(i + j) % len(NAMES)]} {i}",
                MUNICIPALITIES[(i + j) % 3],
            )
            for j in range(shared)
        )
        recipients.append(
            Recipient(
                delivery_id=i,
                address=f"post@firma{i}.no",
                units=units,
                language=("nb", "nb", "nb", "nn", "en")[i % 5],
                code=codes.new_code(),
                unsubscribe_token=f"tok{i:08d}abcdefgh",
            )
        )
    return recipients


def rate(work: Callable[[], None], seconds: float) -> float:
    """How many times per second work() runs, measured over at least the given time."""
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(20):
            work()
        done += 20
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - started)


def builder(keys: list[DkimKey]) -> Callable[[], None]:
    factory = MessageFactory(make_spec(), Signer(keys) if keys else None)
    recipients = make_recipients()
    position = 0

    def work() -> None:
        nonlocal position
        factory.build(recipients[position % len(recipients)])
        position += 1

    return work


def raw_signer(pem: bytes) -> Callable[[], None]:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    # About what DKIM signs: the canonical signed fields and the signature field, ~900 bytes.
    data = os.urandom(900)

    def work() -> None:
        key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    return work


def _raw_worker(pem: bytes, seconds: float) -> float:
    return rate(raw_signer(pem), seconds)


def _build_worker(key_path: str, seconds: float) -> float:
    return rate(builder([load_key(Path(key_path), "nsr.no", "bench")]), seconds)


def all_cores(worker: Callable[[Any, float], float], arg: object, seconds: float) -> float:
    """The summed rate of os.cpu_count() processes doing the same work for the same time."""
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        # A short warm-up round first, so process start-up is not counted.
        list(pool.map(worker, [arg] * workers, [0.05] * workers))
        return sum(pool.map(worker, [arg] * workers, [seconds] * workers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each measurement")
    parser.add_argument("--runs", type=int, default=3, help="measurements per row (median)")
    args = parser.parse_args()
    seconds, runs = args.seconds, args.runs

    with tempfile.TemporaryDirectory() as directory:
        rsa_files = generate_key(Path(directory), "nsr.no", "bench")
        ed_files = generate_key(Path(directory), "nsr.no", "benched", "ed25519")
        pem = rsa_files.private_key.read_bytes()
        rsa_key, ed_key = rsa_files.key, ed_files.key
        key_path = str(rsa_files.private_key)
        measures: dict[str, Callable[[], float]] = {
            "raw_one": lambda: rate(raw_signer(pem), seconds),
            "raw_all": lambda: all_cores(_raw_worker, pem, seconds),
            "unsigned": lambda: rate(builder([]), seconds),
            "signed": lambda: rate(builder([rsa_key]), seconds),
            "dual": lambda: rate(builder([rsa_key, ed_key]), seconds),
            "signed_all": lambda: all_cores(_build_worker, key_path, seconds),
        }
        # Rounds rather than one measure after another: whatever else the machine is doing
        # then falls on every row alike, and the shares stay fair.
        results: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(runs):
            for name, measure in measures.items():
                results[name].append(measure())
        raw_one, raw_all, unsigned, signed, dual, signed_all = (
            statistics.median(results[name]) for name in measures
        )

    cores = os.cpu_count() or 1
    rows = [
        ("raw RSA-2048 signatures, one core", raw_one, raw_one),
        (f"raw RSA-2048 signatures, all {cores} cores", raw_all, raw_all),
        ("messages built, unsigned, one core", unsigned, None),
        ("messages built, RSA-2048 signed, one core", signed, raw_one),
        ("messages built, RSA-2048 + Ed25519 signed, one core", dual, raw_one),
        (f"messages built, RSA-2048 signed, all {cores} cores", signed_all, raw_all),
    ]
    load = os.getloadavg()[0]
    print(
        f"Median of {runs} runs of {seconds:g} s each; one message per recipient; "
        f"load average {load:.2f} at the end (other work on the machine lowers the all-core rows "
        "most).\n"
    )
    print("| measure | per second | per item | share of raw RSA limit |")
    print("| --- | ---: | ---: | ---: |")
    for name, value, limit in rows:
        share = "" if limit is None else f"{100 * value / limit:.0f} %"
        print(f"| {name} | {value:,.0f} | {1e6 / value:,.1f} µs | {share} |")


if __name__ == "__main__":
    main()
