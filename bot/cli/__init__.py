"""The ``tsunagu`` command line: one module per command family, registered here."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Each module exposes ``register(subparsers)``; its parsers set ``func`` to a handler
# taking the parsed namespace and returning an exit code.
_COMMAND_MODULES = (
    "bot.cli.serve",
    "bot.cli.line",
    "bot.cli.kb",
    "bot.cli.user",
    "bot.cli.triage",
    "bot.cli.chat",
    "bot.cli.purge",
    "bot.cli.backup",
    "bot.cli.config",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="tsunagu",
        description="tsunagu: a consultation desk for worries about crime and delinquency",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
