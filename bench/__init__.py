"""Benchmarks: run one with `python -m bench.<name>`; each prints a Markdown snippet."""
