"""The `tuner` command (`python -m tuner`, and the console script).

A worker's stop signals are caught before the CLI and its libraries are imported (`tuner.stop`); every
other command keeps the default signal actions until it installs its own.
"""

import sys

WORKER_COMMANDS = ("worker", "run")


def main() -> None:
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if command in WORKER_COMMANDS:
        from tuner import stop

        stop.install()
    from tuner.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
