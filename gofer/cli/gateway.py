"""The ``gofer-gateway`` command: serve the HTTP gateway in the foreground, as systemd wants it."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from gofer import __version__
from gofer.errors import ConfigError, GoferError

#: Exit statuses; 78 (configuration) is the one gofer-gateway.service does not restart on.
OK, FAILED, CONFIG = 0, 1, 78


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    cli = argparse.ArgumentParser(
        prog="gofer-gateway",
        description="Call gofer agents over HTTP: a JSON API (/v1/...) in front of the "
        "broker, for callers that cannot hold an AMQP connection.",
        epilog="SIGTERM/SIGINT stop it. Exit status: 0 stopped, 1 failed, "
        "78 configuration error (or aiohttp missing: install gofer[gateway]).",
    )
    cli.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path("/etc/gofer/gateway.conf"),
        help="the configuration file (default: %(default)s)",
    )
    cli.add_argument("--listen", metavar="HOST:PORT", help="listen here instead of [main] listen")
    cli.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the lowest level logged, to stderr (default: %(default)s)",
    )
    cli.add_argument("--version", action="version", version=f"gofer-gateway {__version__}")
    return cli


def main(argv: list[str] | None = None) -> int:
    """Run the gateway until a stop signal; returns the exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        from gofer.gateway import config, service  # noqa: PLC0415 - aiohttp is an extra
    except ImportError as exc:
        print(f"gofer-gateway: {exc}; install gofer[gateway]", file=sys.stderr)
        return CONFIG
    try:
        settings = config.load(args.config)
        if args.listen:
            listen = config.parse({"main": {"listen": args.listen}})
            settings = dataclasses.replace(settings, host=listen.host, port=listen.port)
        service.run(settings)
    except ConfigError as exc:
        print(f"gofer-gateway: {exc}", file=sys.stderr)
        return CONFIG
    except (GoferError, OSError) as exc:
        logging.getLogger("gofer.gateway").error("gofer-gateway cannot serve: %s", exc)
        return FAILED
    return OK


if __name__ == "__main__":
    sys.exit(main())
