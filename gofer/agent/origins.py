"""Each plugin's broker settings, kept beside the journal to answer its requests once it is gone.

A request waits in the journal while its plugin is not loaded. If the plugin
never comes back (its descriptor was deleted while goferd was stopped),
goferd still owes each of its requests a reply, on the broker the request
came from and signed as the plugin signs: that takes the plugin's
``[messaging]`` settings, which left with its descriptor. So whenever a
plugin starts serving its queue, goferd keeps a copy of them here, and
forgets it once the plugin is gone and none of its requests is left::

    origins = Origins(paths.journal / "origins")
    origins.keep("dog", descriptor.messaging)   # before dog's runner consumes
    ...                                         # goferd restarts; dog.conf is gone
    messaging = origins.of("dog")               # answer dog's journaled requests there
    origins.forget("dog")                       # none left

One file per plugin, ``<name>.json`` (mode 0600, in a directory of mode
0700 inside the journal's), replaced atomically and only when the settings
change. It holds the settings as the descriptor gave them, the broker
password included: the secret the descriptor itself holds, kept once per
plugin. Recording them with each request instead would write the password
into the journal's log with every request, where it stays until the log is
rewritten; and a URL alone would not do, as answering may also take the TLS
files and the authenticator. Requests journaled by a gofer that kept no
copy (or of a plugin that never served a queue here) have none: goferd
logs that it cannot answer them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from pathlib import Path

from gofer.agent.config.descriptor import MessagingSection
from gofer.agent.journal import valid_plugin_name
from gofer.agent.paths import fsync_directory, make_directory
from gofer.errors import GoferError
from gofer.messaging.url import Url

log = logging.getLogger(__name__)

SUFFIX = ".json"


class Origins:
    """The kept ``[messaging]`` settings of the plugins that served a queue, by plugin name.

    Used by goferd's plugin loading and its sweep of orphaned requests, one
    at a time (goferd's plugin lock); the journal's lock keeps other goferds out.

    Args:
        directory: where the copies live (created on the first :meth:`keep`).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def keep(self, plugin: str, messaging: MessagingSection) -> None:
        """Keep ``plugin``'s settings (durably) unless the copy already says the same.

        Raises:
            OSError: the copy cannot be written (the old one, if any, is left whole).
        """
        path = self.path(plugin)
        data = json.dumps(_as_json(messaging), sort_keys=True).encode()
        with contextlib.suppress(OSError):
            if path.read_bytes() == data:
                return
        make_directory(self.directory, 0o700)
        temp = path.with_name(f".{path.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
        fsync_directory(self.directory)

    def of(self, plugin: str) -> MessagingSection | None:
        """The settings kept for ``plugin``; None if there are none (or they cannot be read)."""
        path = self.path(plugin)
        try:
            found = json.loads(path.read_bytes())
            return _from_json(found)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, GoferError) as exc:
            log.error(
                "cannot read the kept broker settings of plugin %s (%s): %s", plugin, path, exc
            )
            return None

    def plugins(self) -> list[str]:
        """The names of the plugins whose settings are kept."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(
            name[: -len(SUFFIX)]
            for name in names
            if name.endswith(SUFFIX)
            and not name.startswith(".")
            and valid_plugin_name(name[: -len(SUFFIX)])
        )

    def forget(self, plugin: str) -> None:
        """Drop ``plugin``'s settings: it is gone and none of its requests is left."""
        with contextlib.suppress(FileNotFoundError):
            self.path(plugin).unlink()

    def path(self, plugin: str) -> Path:
        """The file of ``plugin``'s settings."""
        if not valid_plugin_name(plugin):
            raise ValueError(f"not a plugin name: {plugin!r}"[:100])
        return self.directory / f"{plugin}{SUFFIX}"


def _as_json(messaging: MessagingSection) -> dict[str, object]:
    fields = dataclasses.asdict(messaging)
    fields["url"] = messaging.url.secret() if messaging.url is not None else None
    return fields


def _from_json(found: object) -> MessagingSection:
    """The settings a copy holds.

    Raises:
        TypeError: it is not an object of :class:`MessagingSection`'s fields.
        GoferError: its URL does not parse.
    """
    if not isinstance(found, dict):
        raise TypeError("not a JSON object")
    known = {field.name for field in dataclasses.fields(MessagingSection)}
    values = {key: value for key, value in found.items() if key in known}
    url = values.pop("url", None)
    if url is not None and not isinstance(url, str):
        raise TypeError("url is not a string")
    return MessagingSection(url=Url.parse(url) if url is not None else None, **values)


__all__ = ["Origins"]
