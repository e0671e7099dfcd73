"""The ``gofer`` command: parses the command line and runs the subcommand it names.

::

    gofer rmi -a demo -t Dog.bark howdy
    gofer mgt -s
"""

from __future__ import annotations

import argparse
import logging

from gofer import __version__
from gofer.cli import mgt, rmi


def build_parser() -> argparse.ArgumentParser:
    """The ``gofer`` parser; each subcommand module adds its own subparser."""
    parser = argparse.ArgumentParser(
        prog="gofer",
        description="Call goferd agents (rmi) and manage the local goferd (mgt).",
    )
    parser.add_argument("--version", action="version", version=f"gofer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rmi.add_parser(commands)
    mgt.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``gofer`` command.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 2 for a usage error, otherwise the subcommand's.
    """
    logging.basicConfig(level=logging.WARNING, format="gofer: %(levelname)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        status: int = args.run(args)
    except SystemExit as exc:  # argparse's usage errors, --help and --version
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return status
