"""Opening the log: replay, a rewrite without damage or leftover secrets, a bad header salvaged."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from gofer import owned
from gofer.agent.journal.disk import LOG_NAME, TEMP_NAME, rewrite, second_name, unlink
from gofer.agent.journal.entry import Entry, JournalConfigError, JournalError, carries_credentials
from gofer.agent.journal.records import FILE_MAGIC, OTHER_FORMAT, RECORD_MAGIC, scan
from gofer.agent.journal.state import State

log = logging.getLogger(__name__)


def open_log(directory: Path, state: State) -> tuple[int, int]:
    """Replay the log into the state; returns the descriptor to append to and its size."""
    path = directory / LOG_NAME
    unlink(directory / TEMP_NAME)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc}") from exc
    if len(data) < len(FILE_MAGIC) and FILE_MAGIC.startswith(data):
        return rewrite(directory, state.records())  # new, or its creation was interrupted
    if not data.startswith(FILE_MAGIC):
        return _salvage(directory, state, path, data)
    carried: list[Entry] = []  # replayed puts with credentials (_credentials_left)
    if _replay(state, data, path, carried):
        log.warning("journal %s: rewriting the log without its damaged parts", path)
        return rewrite(directory, state.records())
    if _credentials_left(state, carried):
        log.info("journal %s: rewriting the log without finished requests' secrets", path)
        return rewrite(directory, state.records())
    try:
        fd = owned.open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError as exc:
        raise JournalError(f"cannot open {path}: {exc}") from exc
    return fd, len(data)


def _salvage(directory: Path, state: State, path: Path, data: bytes) -> tuple[int, int]:
    """Keep a log whose header is not ours aside, and start anew with what records it holds.

    Refusing to open would stop goferd at every start (systemd restarting
    it for ever) over a file an operator has to look at anyway: it is
    kept under a second name, and the records found in it are taken over.
    The second name is a hard link: the log keeps its own name until the
    rewrite replaces it, so a crash in between finds it again, whole.

    A header of another journal format is not damage but a later
    gofer's log (after a downgrade), whose records this one cannot read:
    that is refused, and the file left as it is.

    Raises:
        JournalConfigError: the log is of another journal format.
    """
    later = OTHER_FORMAT.match(data)
    if later is not None:
        raise JournalConfigError(
            f"{path} was written by another version of gofer (journal format "
            f"{later.group(1).decode()}; this one reads {FILE_MAGIC.decode().strip()!r}): "
            "start that version to answer its requests, or move the file aside "
            "(they are then never answered)"
        )
    aside = second_name(path)
    start = data.find(RECORD_MAGIC)
    if start >= 0:
        _replay(state, FILE_MAGIC + data[start:], aside, [])
    log.error(
        "journal %s: not a gofer journal (damaged header); kept as %s, %d request(s) taken"
        " over from it",
        path,
        aside,
        len(state.pending),
    )
    return rewrite(directory, state.records())


def _credentials_left(state: State, carried: list[Entry]) -> bool:
    """True if the log replayed holds the secret or PAM login of a request that is gone.

    Finishing such a request rewrites the log at once (``finish(scrub=True)``);
    goferd killed between the two left them in the file.
    """
    return any(state.pending.get(put.sn) is not put for put in carried)


def _replay(state: State, data: bytes, path: Path, carried: list[Entry]) -> bool:
    """Fold the log's records into the state; True if any part was damaged.

    Puts that carry credentials are added to ``carried``.
    """
    damaged = False
    for offset, item in scan(data):
        if isinstance(item, int):
            damaged = True
            log.warning(
                "journal %s: skipped %d damaged bytes at offset %d "
                "(a write torn by a crash, or a bad disk)",
                path,
                item,
                offset,
            )
        else:
            kind, value = item
            if isinstance(value, Entry) and carries_credentials(value.body):
                carried.append(value)
            state.apply(kind, value)
    log.info("journal %s: %d pending entries", path, len(state.pending))
    return damaged
