"""Run every benchmark at full scale; `make bench`. Each prints a Markdown section."""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    "bench.bench_synth",
    "bench.bench_import",
    "bench.bench_message",
    "bench.bench_smtp",
    "bench.bench_send",
    "bench.bench_workers",
    "bench.bench_letters",
    "bench.bench_web",
    "bench.bench_report",
]


def main() -> None:
    for name in BENCHES:
        print(f"\n## {name}\n", flush=True)
        subprocess.run([sys.executable, "-m", name], check=True)


if __name__ == "__main__":
    main()
