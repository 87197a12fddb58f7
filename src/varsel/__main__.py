"""The `varsel` command's entry point (the console script and `python -m varsel`)."""

import sys


def main() -> None:
    """Run the CLI; Ctrl-C at any moment, even while it is still loading, is one line."""
    try:
        # Imported here, inside the handler: loading the CLI (click, rich, psycopg, ...) takes
        # a moment, and Ctrl-C then must not be a traceback of whatever was being imported.
        from varsel.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        # Plain text: rich, which the CLI's own handler prints with, may be what was loading.
        sys.stderr.write("varsel: avbrutt\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
