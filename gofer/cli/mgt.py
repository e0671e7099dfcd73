"""``gofer mgt``: show the local goferd's plugins and actions; load, reload, unload, cancel.

::

    gofer mgt -s                                    # through the local socket
    gofer mgt -h localhost -p 5650 -l /opt/gofer/plugins/package.conf
    gofer mgt -r package
    gofer mgt --criteria '{"match": {"task": 42}}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

from gofer.agent.management import ManagementClient, ManagementError
from gofer.agent.paths import ROOT_VARIABLE, Paths
from gofer.errors import InvalidURLError
from gofer.messaging.url import Url

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 5650

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

EPILOG = f"""\
By default gofer mgt talks to goferd through its local socket,
{Paths.under().socket} (under ${ROOT_VARIABLE} when that is set); -h or -p talk to the
management port instead (default {DEFAULT_HOST}:{DEFAULT_PORT}).

A plugin is named by its name, or by the path of its descriptor: an argument
containing "/" or ending in .conf or .json is a path.

exit status: {EXIT_OK} success, {EXIT_FAILED} goferd refused or could not be reached, \
{EXIT_USAGE} usage error.
"""


class ManagementClientLike(Protocol):
    """What the command needs of :class:`gofer.agent.management.ManagementClient`."""

    def call(self, command: str, **args: Any) -> Any:
        """Run a management command; raises ``ManagementError`` when it fails."""


#: Makes the client: ``factory(socket_path=..., tcp=...)``; tests pass a fake.
ClientFactory = Callable[..., ManagementClientLike]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``mgt`` subcommand (``-h`` is the host, as in gofer 2; help is ``--help``)."""
    parser = commands.add_parser(
        "mgt",
        add_help=False,
        help="manage the local goferd",
        description="Show goferd's plugins and actions; load, reload and unload plugins; "
        "cancel requests.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--help", action="help", help="show this help message and exit")
    where = parser.add_argument_group("where goferd listens")
    where.add_argument("-h", "--host", help=f"management host (default: {DEFAULT_HOST})")
    where.add_argument(
        "-p",
        "--port",
        type=port,
        help=f"management port (default: {DEFAULT_PORT}); over it, load and reload take"
        " only enabled descriptors of goferd's descriptor directory",
    )
    where.add_argument(
        "--socket",
        type=Path,
        metavar="PATH",
        help=f"goferd's socket (default: {Paths.under().socket})",
    )
    actions = parser.add_argument_group("what to do (one of)")
    what = actions.add_mutually_exclusive_group(required=True)
    what.add_argument("-s", "--show", action="store_true", help="show plugins and actions")
    what.add_argument("-l", "--load", metavar="PATH", help="load the plugin of this descriptor")
    what.add_argument("-r", "--reload", metavar="NAME|PATH", help="reload a plugin")
    what.add_argument("-u", "--unload", metavar="NAME|PATH", help="unload a plugin")
    what.add_argument(
        "-c", "--cancel", metavar="SN", help="cancel the request of this serial number"
    )
    what.add_argument(
        "--criteria", type=criteria, metavar="JSON", help="cancel the requests matching these"
    )
    parser.add_argument("--json", action="store_true", help="with -s: print the status as JSON")
    parser.set_defaults(run=run_mgt, parser=parser)


def port(text: str) -> int:
    """A TCP port number (``-p``)."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return number


def criteria(text: str) -> dict[str, Any]:
    """Cancel criteria (``--criteria``): a JSON object."""
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid JSON {text!r}: {exc}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"criteria must be a JSON object, not {text!r}")
    return parsed


def plugin_reference(text: str) -> dict[str, str]:
    """``{"path": absolute path}`` for a descriptor path, else ``{"name": text}``.

    A path is made absolute here because goferd does not share our working
    directory.
    """
    if "/" in text or text.endswith((".conf", ".json")):
        return {"path": os.path.abspath(text)}
    return {"name": text}


def request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The management command and its arguments for the parsed options."""
    if args.show:
        return "show", {}
    if args.load is not None:
        return "load", {"path": os.path.abspath(args.load)}
    if args.reload is not None:
        return "reload", plugin_reference(args.reload)
    if args.unload is not None:
        return "unload", plugin_reference(args.unload)
    if args.cancel is not None:
        return "cancel", {"sn": args.cancel}
    return "cancel", {"criteria": args.criteria}


def run_mgt(
    args: argparse.Namespace,
    client_factory: ClientFactory | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Send the management command the parsed arguments describe and print the result.

    Args:
        args: the parsed ``gofer mgt`` arguments.
        client_factory: makes the client, ``factory(socket_path=..., tcp=...)``;
            :class:`~gofer.agent.management.ManagementClient` when None.
        stdout: where results go (``sys.stdout``).
        stderr: where errors go (``sys.stderr``).

    Returns:
        0 on success, 1 when goferd could not be reached or refused.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    tcp_given = args.host is not None or args.port is not None
    if tcp_given and args.socket is not None:
        args.parser.error("--socket cannot be combined with -h/--host or -p/--port")
    socket_path = None if tcp_given else (args.socket or Paths.from_environment().socket)
    tcp = (args.host or DEFAULT_HOST, args.port or DEFAULT_PORT) if tcp_given else None
    endpoint = f"{tcp[0]}:{tcp[1]}" if tcp else str(socket_path)
    command, arguments = request(args)
    factory = client_factory or ManagementClient
    try:
        result = factory(socket_path=socket_path, tcp=tcp).call(command, **arguments)
    except ManagementError as exc:  # its text names the endpoint when that is the trouble
        print(f"gofer mgt: {command}: {exc}", file=err)
        return EXIT_FAILED
    except OSError as exc:
        print(f"gofer mgt: {command}: {endpoint}: {exc}", file=err)
        return EXIT_FAILED
    if command == "show" and not args.json:
        if not isinstance(result, Mapping):
            print(f"gofer mgt: show: goferd answered {result!r}, not a status", file=err)
            return EXIT_FAILED
        print(render_status(result), file=out)
    elif result is not None:
        text = result if isinstance(result, str) else json.dumps(result, indent=2)
        print(text, file=out)
    return EXIT_OK


# -- the status layout of gofer 2 ------------------------------------------------


def render_status(status: Mapping[str, Any]) -> str:
    """The ``show`` result in gofer 2's layout: plugins, their classes and functions, actions."""
    lines = ["Plugins:"]
    plugins = status.get("plugins") or []
    for plugin in plugins:
        lines.append("")
        lines.extend(_plugin_lines(plugin))
    if plugins:
        lines.append("")
    lines.append("Actions:")
    for action in status.get("actions") or []:
        lines.append(f"  <action> {action.get('name')} (every {_interval(action.get('interval'))})")
    failed = status.get("failed") or []
    if failed:
        lines.append("")
        lines.append("Failed to load:")
        lines.extend(f"  {item.get('name')}: {item.get('error')}" for item in failed)
    return "\n".join(lines)


def _plugin_lines(plugin: Mapping[str, Any]) -> list[str]:
    disabled = "" if plugin.get("enabled", True) else " (disabled)"
    lines = [f"  <plugin> {plugin.get('name')}{disabled}"]
    if plugin.get("url"):
        lines.append(f"    url: {_safe_url(str(plugin['url']))}")
    if plugin.get("queue"):
        lines.append(f"    queue: {plugin['queue']}")
    if plugin.get("url") and "connected" in plugin:
        lines.append(f"    connected: {_safe_url(str(plugin['connected'] or 'no'))}")
    lines.append("    Classes:")
    for cls in plugin.get("classes") or []:
        lines.append(f"      <class> {cls.get('name')}")
        lines.append("        methods:")
        lines.extend(f"          {method}" for method in cls.get("methods") or [])
    lines.append("    Functions:")
    lines.extend(f"      {function}" for function in plugin.get("functions") or [])
    return lines


def _interval(interval: Any) -> str:
    """``90s``, ``10m``, ``1h``, ``1d`` for seconds; anything else as given."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        return interval if isinstance(interval, str) else json.dumps(interval)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if interval >= size and interval % size == 0:
            return f"{interval // size:g}{unit}"
    return f"{interval:g}s"


def _safe_url(text: str) -> str:
    """A broker URL without its password, whatever goferd sent."""
    try:
        return str(Url.parse(text))
    except InvalidURLError:
        return text.rpartition("@")[2]
