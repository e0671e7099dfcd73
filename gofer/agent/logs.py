"""goferd's logging setup: journald, syslog or stderr, levels from ``[logging]``, passwords masked.

Only the daemon's entry point calls :func:`configure`; library code just
logs. Every handler installed here carries :class:`PasswordFilter`, so a
broker URL or a ``password=...`` that a plugin logs reaches no log line
with its password.

Targets:

- ``journald``: the native journal protocol, one datagram per record on
  :data:`JOURNAL_SOCKET`, with ``PRIORITY``, ``SYSLOG_IDENTIFIER=goferd``,
  ``CODE_FILE``/``CODE_LINE``/``CODE_FUNC``, ``LOGGER`` and ``THREAD_NAME``
  as fields (``journalctl -t goferd LOGGER=gofer.agent.management``).
- ``syslog``: :class:`logging.handlers.SysLogHandler` on ``/dev/log``,
  facility ``daemon``.
- ``stderr``: one line per record with time, level, thread and logger.
- ``auto``: journald when systemd started us (``$JOURNAL_STREAM`` or
  ``$INVOCATION_ID``) and the journal socket exists, else stderr.

A target whose socket is missing falls back to stderr, with a warning.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import socket
import stat
import struct
import sys
import time
from collections.abc import Iterable, Mapping

from gofer.errors import ConfigError

log = logging.getLogger(__name__)

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_SOCKET = "/dev/log"
IDENTIFIER = "goferd"
TARGETS = ("auto", "journald", "syslog", "stderr", "json")

#: The level names ``[logging]`` accepts, in any case (gofer 2.x's list).
LEVELS = {
    "CRITICAL": logging.CRITICAL,
    "FATAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}
#: The root level when ``[logging]`` sets none.
DEFAULT_LEVEL = logging.INFO

STDERR_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"
SYSLOG_FORMAT = "%(levelname)s [%(threadName)s] %(name)s: %(message)s"
JOURNAL_FORMAT = "[%(threadName)s] %(name)s: %(message)s"

#: Journal messages are cut to this many characters: a datagram has a size limit.
MAX_JOURNAL_MESSAGE = 64 * 1024

_HANDLER_NAME = "goferd"  # marks our handlers, so configuring again replaces them
_SYSLOG_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4))

# scheme://user:password@ -> scheme://user:***@. Greedy up to the last "@" before
# whitespace, so a password holding "@" or "/" is masked whole (masking too much
# beats leaking: test_mask_password_with_at_sign).
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):[^\s]*@")
# password=x, "password": "x", secret='x', db_passwd: x -> the value becomes ***.
_SECRET_PAIR = re.compile(
    r"""(?P<key>\b[\w.-]*(?:password|passwd|secret)[\w.-]*['"]?\s*[=:]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&'")\]}]+)""",
    re.IGNORECASE,
)


def mask(text: str) -> str:
    """The text with URL passwords and ``password=...`` values replaced by ``***``."""
    text = _URL_CREDENTIALS.sub(r"\g<head>:***@", text)
    return _SECRET_PAIR.sub(_masked_pair, text)


def _masked_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match.group('key')}{quote}***{quote}"


class PasswordFilter(logging.Filter):
    """Masks passwords in the message, exception text and stack of each record it passes."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - the handler reports the bad format string itself
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


class JournalHandler(logging.Handler):
    """Sends each record to systemd-journald as one native-protocol datagram.

    Falls back to writing the line to stderr when the journal cannot be
    reached (journald restarting), so a record is not lost silently.

    Args:
        path: the journal's datagram socket.
        identifier: ``SYSLOG_IDENTIFIER`` (``journalctl -t``).
    """

    def __init__(self, path: str = JOURNAL_SOCKET, identifier: str = IDENTIFIER) -> None:
        super().__init__()
        self.path = path
        self.identifier = identifier
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def fields(self, record: logging.LogRecord) -> list[tuple[str, str]]:
        """The journal fields of a record, ``MESSAGE`` first."""
        message = self.format(record)
        if len(message) > MAX_JOURNAL_MESSAGE:
            message = message[:MAX_JOURNAL_MESSAGE] + " [truncated]"
        return [
            ("MESSAGE", message),
            ("PRIORITY", str(syslog_priority(record.levelno))),
            ("SYSLOG_IDENTIFIER", self.identifier),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", str(record.lineno)),
            ("CODE_FUNC", record.funcName or ""),
            ("LOGGER", record.name),
            ("THREAD_NAME", record.threadName or ""),
        ]

    def emit(self, record: logging.LogRecord) -> None:
        """Send the record; on failure write it to stderr instead."""
        try:
            datagram = encode_journal_fields(self.fields(record))
        except Exception:  # noqa: BLE001 - logging must not raise; handleError reports it
            self.handleError(record)
            return
        try:
            self._socket.sendto(datagram, self.path)
        except OSError:
            # Never log from here: this handler would receive the record.
            sys.stderr.write(f"{self.identifier}: {self.format(record)}\n")

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()
        super().close()


def encode_journal_fields(fields: Iterable[tuple[str, str]]) -> bytes:
    """Encode fields in journald's native protocol.

    A value without a newline is ``KEY=VALUE\\n``; one with a newline (a
    traceback) is ``KEY\\n``, its length as 64-bit little endian, the
    bytes, ``\\n``.
    """
    parts: list[bytes] = []
    for key, value in fields:
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            parts.append(key.encode("ascii") + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(key.encode("ascii") + b"=" + data + b"\n")
    return b"".join(parts)


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level: 2 critical ... 6 info, 7 debug."""
    for threshold, priority in _SYSLOG_PRIORITIES:
        if levelno >= threshold:
            return priority
    return 6 if levelno >= logging.INFO else 7


def configure(
    levels: Mapping[str, str],
    *,
    target: str = "auto",
    foreground_stderr: bool = True,
) -> str:
    """Set up goferd's logging; calling it again replaces what it set up before.

    Args:
        levels: ``[logging]``: logger name (``root`` for the root logger,
            ``gofer.agent`` ...) to level name, any case. The root level is
            INFO unless set.
        target: ``auto``, ``journald``, ``syslog`` or ``stderr``.
        foreground_stderr: when the target is journald or syslog and stderr
            is a terminal (goferd started by hand in the foreground), also
            write to stderr. Under systemd stderr is the journal, not a
            terminal, so nothing is logged twice.

    Returns:
        The target used: the one asked for, the one ``auto`` chose, or
        ``stderr`` when the asked one was unavailable.

    Raises:
        ConfigError: an unknown level or target; nothing was changed.
    """
    parsed = _parse_levels(levels)
    if target not in TARGETS:
        raise ConfigError(
            f"unknown log target {target!r}; expected one of {', '.join(TARGETS)}",
            section="logging",
        )
    used, handler, problem = _make_handler(target)
    handlers = [handler]
    if foreground_stderr and used in ("journald", "syslog") and _stderr_is_terminal():
        handlers.append(_stderr_handler())
    _install(handlers)
    logging.getLogger().setLevel(parsed.pop("root", DEFAULT_LEVEL))
    for name, level in parsed.items():
        logging.getLogger(name).setLevel(level)
    if problem:
        log.warning("%s; logging to stderr", problem)
    return used


def _parse_levels(levels: Mapping[str, str]) -> dict[str, int]:
    parsed: dict[str, int] = {}
    for name, value in levels.items():
        level = LEVELS.get(str(value).strip().upper())
        if level is None:
            raise ConfigError(
                f"unknown log level {value!r}; expected one of {', '.join(LEVELS)}",
                section="logging",
                key=name,
            )
        parsed[name.strip()] = level
    return parsed


def _make_handler(target: str) -> tuple[str, logging.Handler, str | None]:
    """The handler for a target: (target used, handler, why it fell back or None)."""
    if target == "auto":
        under_systemd = "JOURNAL_STREAM" in os.environ or "INVOCATION_ID" in os.environ
        target = "journald" if under_systemd and _is_socket(JOURNAL_SOCKET) else "stderr"
    if target == "journald":
        if _is_socket(JOURNAL_SOCKET):
            return "journald", _journal_handler(), None
        return "stderr", _stderr_handler(), f"no journal socket at {JOURNAL_SOCKET}"
    if target == "syslog":
        if _is_socket(SYSLOG_SOCKET):
            return "syslog", _syslog_handler(), None
        return "stderr", _stderr_handler(), f"no syslog socket at {SYSLOG_SOCKET}"
    if target == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        return "json", handler, None
    return "stderr", _stderr_handler(), None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``thread``, ``pid``, ``message``, and ``exception`` when there is one.

    For log collectors that read JSON lines (containers, Loki, Elasticsearch).
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        entry: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


JsonFormatter.converter = staticmethod(time.gmtime)


def _journal_handler() -> logging.Handler:
    handler = JournalHandler(JOURNAL_SOCKET)
    handler.setFormatter(logging.Formatter(JOURNAL_FORMAT))
    return handler


def _syslog_handler() -> logging.Handler:
    handler = logging.handlers.SysLogHandler(
        address=SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_DAEMON
    )
    handler.ident = f"{IDENTIFIER}[{os.getpid()}]: "
    handler.setFormatter(logging.Formatter(SYSLOG_FORMAT))
    return handler


def _stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(STDERR_FORMAT))
    return handler


def _install(handlers: list[logging.Handler]) -> None:
    """Replace the root handlers installed before by ours; leave anyone else's alone."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.set_name(_HANDLER_NAME)
        handler.addFilter(PasswordFilter())
        root.addHandler(handler)


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
