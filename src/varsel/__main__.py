"""Run the CLI with `python -m varsel`."""

from varsel.cli import main

main()
