"""``gofer rmi``: call one remote method of an agent from the shell and print its result.

::

    gofer rmi -u amqp://localhost -a demo -t Dog.bark howdy
    gofer rmi -a demo -t Dog.wag 3 loud=true
    gofer rmi -a demo -w 0 -r replies -t Dog.bark howdy   # prints the serial number
    gofer rmi -a web1 -a web2 --agents-file more.txt -t Package.install zsh   # many agents
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TextIO

from gofer.errors import (
    InvalidURLError,
    MessagingError,
    RemoteError,
    RequestRejectedError,
    RequestTimeoutError,
    RmiError,
)
from gofer.messaging.url import Url
from gofer.proxy import Agent, Fleet, Outcome
from gofer.rmi.fanout import DEFAULT_CONCURRENCY
from gofer.rmi.options import DEFAULT_WAIT, seconds

EXIT_OK = 0
EXIT_REMOTE = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_REJECTED = 4
EXIT_MESSAGING = 5
EXIT_SOME_FAILED = 6
EXIT_INTERRUPTED = 130

# Names of environment variables, not secrets:
PASSWORD_ENV = "GOFER_PASSWORD"  # noqa: S105
BROKER_PASSWORD_ENV = "GOFER_BROKER_PASSWORD"  # noqa: S105
SECRET_ENV = "GOFER_SECRET"  # noqa: S105

_KEYWORD = re.compile(r"^([A-Za-z_]\w*)=(.*)$", re.DOTALL)
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")

EPILOG = f"""\
arguments:
  Each ARG is a positional argument, or a keyword argument when written
  name=value. A value is taken as JSON when it parses (3, 2.5, true, null,
  [1,2], {{"a":1}}, '"quoted"'), otherwise as a plain string (howdy). A value
  starting with [ {{ or " must be valid JSON.

durations (-w, -x): seconds, or with a suffix: 30s, 5m, 2h, 1d.

Secrets on the command line show in the process list; give them in the
environment instead: the PAM password in ${PASSWORD_ENV} (with --user and
neither, it is asked for when standard input is a terminal), the shared
secret in ${SECRET_ENV}, and the broker password in ${BROKER_PASSWORD_ENV},
which completes a -u URL that names a user and no password
(-u amqps://agent@mq.example.com).

exit status:
  {EXIT_OK}    success; the result (or the serial number) is on standard output
  {EXIT_REMOTE}    the remote method raised an exception (or the call was not
       authorized, or names no such class or method)
  {EXIT_USAGE}    usage error
  {EXIT_TIMEOUT}    no reply within the wait; the serial number is printed, a late
       reply carries it
  {EXIT_REJECTED}    the agent rejected the request (code and description printed)
  {EXIT_MESSAGING}    broker or messaging error (unreachable broker, missing queue, ...)
  {EXIT_SOME_FAILED}    several agents: not every one succeeded
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); the request may still run

several agents (-a more than once, or --agents-file): one request each, at
most --concurrency at a time (or --batch at a time, each batch ending before
the next), all within one wait. A line per agent on standard output as each
ends, "AGENT STATUS RESULT-OR-ERROR" (status succeeded, failed, rejected,
timeout, no_queue, cancelled or error), or with --json a JSON object per
line; a live count of done, failed and pending on a terminal.

examples:
  gofer rmi -u amqp://localhost -a demo -t Dog.bark howdy
  gofer rmi -a demo -w 180 -t Dog.wag 3
  gofer rmi -a demo -w 0 -r replies -t Dog.bark howdy
  gofer rmi -a demo --cntr '[["rover"],{{"age":3}}]' -t Dog.bark hello
  gofer rmi --agents-file hosts.txt -w 10m --batch 50 -t Package.update
"""


class _AgentLike(Protocol):
    """What the command needs of an :class:`~gofer.proxy.Agent`: stubs by class name."""

    def __getitem__(self, name: str) -> Any: ...


#: Makes the agent: ``factory(url, address, **options)``; tests pass a fake.
AgentFactory = Callable[..., _AgentLike]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``rmi`` subcommand to the ``gofer`` parser."""
    parser = commands.add_parser(
        "rmi",
        help="invoke a remote method of an agent",
        description="Invoke a method (or plugin function) of a remote agent and print the result.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-u",
        "--url",
        type=broker_url,
        default="amqp://localhost",
        help="the broker URL, or several separated by commas for a cluster's nodes "
        "(default: amqp://localhost)",
    )
    parser.add_argument(
        "-a",
        "--address",
        type=address,
        action="append",
        dest="addresses",
        default=[],
        help="the agent's queue address; again for more agents",
    )
    parser.add_argument(
        "--agents-file",
        metavar="FILE",
        help="more agent addresses, one per line (# comments; - for standard input)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive("concurrency"),
        default=DEFAULT_CONCURRENCY,
        help=f"several agents: the most requests out at a time (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--batch",
        type=positive("batch"),
        help="several agents: N at a time, each batch ending before the next starts",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each agent's outcome as a JSON object on a line of its own",
    )
    parser.add_argument(
        "-t",
        "--target",
        type=target,
        required=True,
        metavar="CLASS.METHOD",
        help="what to call: Class.method, or plugin.function for a module function",
    )
    parser.add_argument(
        "arguments", nargs="*", type=argument, metavar="ARG", help="value, or name=value"
    )
    parser.add_argument(
        "-w",
        "--wait",
        type=duration("wait"),
        help=f"how long to wait for the result (default: {DEFAULT_WAIT:g}s); "
        "0 sends without waiting and prints the serial number",
    )
    parser.add_argument(
        "-r",
        "--reply",
        metavar="ADDRESS",
        help="send the reply to this address instead; prints the serial number at once",
    )
    parser.add_argument(
        "-x", "--ttl", type=duration("ttl"), help="how long the agent has to start the request"
    )
    parser.add_argument(
        "--data", type=value, metavar="JSON", help="user data, echoed back in every reply"
    )
    parser.add_argument(
        "--cntr",
        type=constructor,
        metavar="JSON",
        help='constructor arguments: [[args...], {"kw": value}], or a list of arguments',
    )
    parser.add_argument(
        "--secret", help=f"the shared secret the method requires (better: ${SECRET_ENV})"
    )
    parser.add_argument("--user", help="the PAM user the method requires")
    parser.add_argument("--password", help=f"the PAM password (better: ${PASSWORD_ENV})")
    parser.add_argument("--cacert", metavar="PATH", help="CA certificates for amqps URLs")
    parser.add_argument("--clientcert", metavar="PATH", help="client certificate (PEM)")
    parser.add_argument("--clientkey", metavar="PATH", help="client certificate's key (PEM)")
    parser.add_argument(
        "--no-host-validation",
        dest="host_validation",
        action="store_false",
        help="do not check that the broker's certificate names its host",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the serial number first, and remote tracebacks on failure",
    )
    parser.set_defaults(run=run_rmi, parser=parser)


# -- argument types --------------------------------------------------------------


def broker_url(text: str) -> str:
    """Check a broker URL (``-u``); the text is kept as given, password included."""
    try:
        Url.parse(text)
    except InvalidURLError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def address(text: str) -> str:
    """Check an agent address (``-a``): a queue, or ``exchange/queue``."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the address must not be empty")
    return text


def positive(name: str) -> Callable[[str], int]:
    """An argument type for a count of at least 1."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            number = 0
        if number < 1:
            raise argparse.ArgumentTypeError(
                f"{name} is a whole number of at least 1, not {text!r}"
            )
        return number

    parse.__name__ = name
    return parse


def target(text: str) -> tuple[str, str]:
    """Split ``Class.method`` (or ``plugin.function``) into its two names.

    Raises:
        argparse.ArgumentTypeError: no dot, an empty class name, or a method
            name that is not an identifier.
    """
    classname, dot, method = text.rpartition(".")
    if not dot or not classname or any(c.isspace() for c in classname):
        raise argparse.ArgumentTypeError(f"expected Class.method, not {text!r}")
    if not _IDENTIFIER.match(method):
        raise argparse.ArgumentTypeError(f"{method!r} is not a method name (in {text!r})")
    return classname, method


def value(text: str) -> Any:
    """A value as JSON when it parses (``3``, ``true``, ``[1,2]``), else the string itself.

    Raises:
        argparse.ArgumentTypeError: the text starts like JSON (``[``, ``{``
            or ``"``) but is not valid JSON; a typo must not turn a list into
            a string silently.
    """
    try:
        return json.loads(text)
    except ValueError as exc:
        if text.lstrip()[:1] in ("[", "{", '"'):
            raise argparse.ArgumentTypeError(f"invalid JSON {text!r}: {exc}") from None
        return text


def argument(text: str) -> tuple[str | None, Any]:
    """One ``ARG``: ``(name, value)`` for ``name=value``, ``(None, value)`` otherwise."""
    match = _KEYWORD.match(text)
    if match:
        return match.group(1), value(match.group(2))
    return None, value(text)


def constructor(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Constructor arguments (``--cntr``): ``[[args], {kwargs}]``, ``[args...]`` or ``{kwargs}``."""
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid JSON {text!r}: {exc}") from None
    if isinstance(parsed, dict):
        return [], parsed
    if isinstance(parsed, list):
        if len(parsed) == 2 and isinstance(parsed[0], list) and isinstance(parsed[1], dict):
            return parsed[0], parsed[1]
        return parsed, {}
    raise argparse.ArgumentTypeError(f"expected a JSON list or object, not {text!r}")


def duration(name: str) -> Callable[[str], float]:
    """An argument type for a duration (``30``, ``30s``, ``5m``, ``2h``, ``1d``)."""

    def parse(text: str) -> float:
        try:
            return seconds(text, name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


# -- running -----------------------------------------------------------------------


def run_rmi(
    args: argparse.Namespace,
    agent_factory: AgentFactory | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Make the call the parsed arguments describe, print the outcome, return the exit status.

    Args:
        args: the parsed ``gofer rmi`` arguments.
        agent_factory: makes the agent, ``factory(url, address, **options)``;
            :class:`gofer.proxy.Agent` when None.
        stdout: where the result goes (``sys.stdout``).
        stderr: where progress and errors go (``sys.stderr``).

    Returns:
        One of the ``EXIT_*`` codes.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    positional, keywords, duplicate = _split_arguments(args.arguments)
    if duplicate:
        args.parser.error(f"keyword argument {duplicate!r} given more than once")
    addresses = _addresses(args)
    password = args.password or os.environ.get(PASSWORD_ENV) or _ask_password(args.user)
    args.secret = args.secret or os.environ.get(SECRET_ENV)
    args.url = _with_broker_password(args.url)
    redact = _Redactor([*Url.parse(args.url).passwords(), password, args.secret])
    if len(addresses) > 1 or args.agents_file:
        return _fan_out(
            args,
            addresses=addresses,
            arguments=(positional, keywords),
            password=password,
            redact=redact,
            streams=(out, err),
        )
    args.address = addresses[0]
    progress = Progress(err)
    agent = (agent_factory or Agent)(args.url, args.address, **_options(args, password, progress))
    classname, method = args.target
    stub = agent[classname]()
    if args.cntr is not None:
        stub = stub(*args.cntr[0], **args.cntr[1])
    trigger = stub[method](*positional, **keywords)
    if args.verbose:
        print(f"request {trigger.sn}", file=err)
    try:
        result = trigger()
    except KeyboardInterrupt:
        progress.finish()
        print(f"interrupted; request {trigger.sn} may still run", file=err)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - _failure() sorts them and re-raises the rest
        progress.finish()
        return _failure(exc, args, redact, err)
    progress.finish()
    if args.json:
        outcome = Outcome(args.address, "succeeded", result=result, sn=trigger.sn)
        if args.reply or args.wait == 0:
            outcome = Outcome(args.address, "sent", sn=trigger.sn)
        print(json.dumps(outcome.as_dict(), default=repr), file=out)
    else:
        _print_result(result, out)
    return EXIT_OK


def _addresses(args: argparse.Namespace) -> list[str]:
    """The agents named by ``-a`` and ``--agents-file``, each once, in order."""
    found = list(args.addresses)
    if args.agents_file:
        try:
            if args.agents_file == "-":
                lines = sys.stdin.read().splitlines()
            else:
                with open(args.agents_file, encoding="utf-8") as listed:
                    lines = listed.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            args.parser.error(f"cannot read --agents-file {args.agents_file}: {exc}")
        found.extend(
            line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()
        )
    if not found:
        args.parser.error("no agent: give -a ADDRESS (or --agents-file FILE)")
    return list(dict.fromkeys(found))


def _fan_out(
    args: argparse.Namespace,
    *,
    addresses: list[str],
    arguments: tuple[list[Any], dict[str, Any]],
    password: str | None,
    redact: _Redactor,
    streams: tuple[TextIO, TextIO],
) -> int:
    """One request to each agent; a line per outcome as it comes; the exit status."""
    out, err = streams
    if args.reply or args.wait == 0:
        args.parser.error("several agents: their results are waited for (no -r, no -w 0)")
    options = _options(args, password, None)
    for name in ("trigger", "progress", "reply"):
        options.pop(name)
    summary = Summary(err, len(addresses))
    try:
        fleet = Fleet(
            args.url, addresses, concurrency=args.concurrency, batch=args.batch, **options
        )
        classname, method = args.target
        calls = fleet.call(classname, method, *arguments[0], cntr=_cntr(args), **arguments[1])
        for outcome in calls:
            summary.clear()
            print(redact(_outcome_line(outcome, args.json)), file=out, flush=True)
            summary.add(outcome)
    except KeyboardInterrupt:
        summary.finish()
        print("interrupted; requests already sent may still run", file=err)
        return EXIT_INTERRUPTED
    except MessagingError as exc:
        summary.finish()
        print(f"messaging error ({Url.parse(args.url)}): {redact(str(exc))}", file=err)
        return EXIT_MESSAGING
    summary.finish()
    return EXIT_OK if summary.failed == 0 else EXIT_SOME_FAILED


def _cntr(args: argparse.Namespace) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    if args.cntr is None:
        return None
    return tuple(args.cntr[0]), dict(args.cntr[1])


def _outcome_line(outcome: Outcome, as_json: bool) -> str:
    if as_json:
        return json.dumps(outcome.as_dict(), default=repr)
    if outcome.ok:
        shown = (
            outcome.result
            if isinstance(outcome.result, str)
            else json.dumps(outcome.result, default=repr)
        )
    elif isinstance(outcome.error, (RemoteError, RequestRejectedError)):
        shown = _describe(outcome.error)
    else:
        shown = f"{type(outcome.error).__name__}: {outcome.error}" if outcome.error else ""
    return f"{outcome.agent} {outcome.status} {' '.join(shown.splitlines())}".rstrip()


class Summary:
    """A live count of a fan-out on a terminal: done, failed, pending (nothing elsewhere)."""

    def __init__(self, stream: TextIO, total: int, tty: bool | None = None) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.failed = 0
        self.tty = stream.isatty() if tty is None else tty
        self._drawn = False

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += 0 if outcome.ok else 1
        if self.tty:
            pending = self.total - self.done
            self.stream.write(
                f"\r\x1b[Kdone {self.done}/{self.total}, failed {self.failed}, pending {pending}"
            )
            self.stream.flush()
            self._drawn = True

    def clear(self) -> None:
        """Take the count off the line, so that an outcome printed next is not mixed in."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False

    def finish(self) -> None:
        """Leave the final count on its own line (on a terminal)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
        elif not self.tty:
            print(
                f"{self.done} agents: {self.done - self.failed} succeeded, {self.failed} not",
                file=self.stream,
            )


def _options(
    args: argparse.Namespace, password: str | None, progress: Progress | None
) -> dict[str, Any]:
    """The RMI options for the call; a trigger, so the serial number is known before sending."""
    options: dict[str, Any] = {
        "trigger": 1,
        "progress": progress,
        "reply": args.reply,
        "ttl": args.ttl,
        "data": args.data,
        "secret": args.secret,
        "user": args.user,
        "password": password,
        "cacert": args.cacert,
        "clientcert": args.clientcert,
        "clientkey": args.clientkey,
        "host_validation": args.host_validation,
    }
    if args.wait is not None:
        options["wait"] = args.wait
    return options


def _split_arguments(
    arguments: Iterable[tuple[str | None, Any]],
) -> tuple[list[Any], dict[str, Any], str | None]:
    """Positional and keyword arguments, and the first keyword given twice (if any)."""
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for name, item in arguments:
        if name is None:
            positional.append(item)
        elif name in keywords:
            return positional, keywords, name
        else:
            keywords[name] = item
    return positional, keywords, None


def _with_broker_password(url: str) -> str:
    """The URL, with ``$GOFER_BROKER_PASSWORD`` for each broker naming a user and no password."""
    parsed = Url.parse(url)
    password = os.environ.get(BROKER_PASSWORD_ENV)
    each = list(parsed.each())
    if not password or not any(u.userid is not None and u.password is None for u in each):
        return url
    filled = [
        dataclasses.replace(u, password=password)
        if u.userid is not None and u.password is None
        else u
        for u in each
    ]
    return dataclasses.replace(filled[0], alternates=tuple(filled[1:])).secret()


def _ask_password(user: str | None) -> str | None:
    """Prompt for the PAM password of ``user`` when there is a terminal to ask on."""
    if user and sys.stdin.isatty():
        return getpass.getpass(f"PAM password for {user}: ")
    return None


def _failure(exc: Exception, args: argparse.Namespace, redact: _Redactor, err: TextIO) -> int:
    """Print why the call failed; the exit status for it."""
    if isinstance(exc, RequestTimeoutError):
        print(f"timeout: {redact(str(exc))}", file=err)
        print(f"serial number: {exc.sn}", file=err)
        return EXIT_TIMEOUT
    if isinstance(exc, RequestRejectedError):
        print(f"rejected [{exc.code}]: {redact(exc.description)}", file=err)
        return EXIT_REJECTED
    if isinstance(exc, MessagingError):
        print(f"messaging error ({Url.parse(args.url)}): {redact(str(exc))}", file=err)
        return EXIT_MESSAGING
    trace = getattr(exc, "remote_traceback", None)
    if not isinstance(exc, RmiError) and trace is None:
        raise exc  # not from the agent: a bug here, shown with its traceback
    print(redact(_describe(exc)), file=err)
    if args.verbose and trace:
        print(redact(str(trace)).rstrip("\n"), file=err)
    return EXIT_REMOTE


def _describe(exc: Exception) -> str:
    """``xclass: message`` for a remote exception."""
    if isinstance(exc, RemoteError):
        name = exc.xclass
        xargs = exc.xargs
        message = str(xargs[0]) if len(xargs) == 1 else str(tuple(xargs)) if xargs else ""
    else:
        name = type(exc).__name__
        message = str(exc)
    return f"{name}: {message}" if message else name


def _print_result(result: Any, out: TextIO) -> None:
    """A string as it is; anything else as indented JSON."""
    if isinstance(result, str):
        print(result, file=out)
    else:
        print(json.dumps(result, indent=2, default=repr), file=out)


class _Redactor:
    """Replaces secrets (the URL's password, --password, --secret) in text to be printed."""

    def __init__(self, secrets: Sequence[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class Progress:
    """Shows progress reports: one line rewritten in place on a terminal, else a line each.

    Args:
        stream: where to write (standard error).
        tty: whether the stream is a terminal; asked of the stream when None.
    """

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._drawn = False

    def __call__(self, report: dict[str, Any]) -> None:
        """Show one report (``sn``, ``data``, ``total``, ``completed``, ``details``)."""
        line = self.format(report)
        if self.tty:
            width = shutil.get_terminal_size().columns
            self.stream.write("\r\x1b[K" + line[: max(width - 1, 1)])
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the line being rewritten, so that what follows starts on its own line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    @staticmethod
    def format(report: dict[str, Any]) -> str:
        """``[completed/total] details``, leaving out what the report does not say."""
        total, completed, details = (report.get(k) for k in ("total", "completed", "details"))
        parts = []
        if completed is not None and total is not None:
            parts.append(f"[{completed}/{total}]")
        elif completed is not None:
            parts.append(f"[{completed}]")
        if details is not None and details != "":
            text = details if isinstance(details, str) else json.dumps(details, default=repr)
            parts.append(" ".join(text.splitlines()))
        return " ".join(parts) if parts else "..."
