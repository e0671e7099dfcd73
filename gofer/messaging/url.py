"""The broker URL: ``[adapter+]scheme://[user:password@]host[:port][/virtual-host]``.

Where gofer takes a broker URL it also takes several, separated by commas,
for the nodes of a cluster: ``amqp://h1,amqp://h2:5673,amqp://h3``. Each is
a whole URL (its own credentials and virtual host); one that names no
adapter takes the first one's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit

from gofer.errors import InvalidURLError

PLAIN_SCHEMES = frozenset({"amqp", "tcp", "memory"})
TLS_SCHEMES = frozenset({"amqps", "ssl"})
DEFAULT_PORTS = {False: 5672, True: 5671}

# A comma followed by the start of another URL: "," inside a password does
# not split (nor should it, unencoded, be followed by "scheme://").
_NEXT_URL = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9.+-]*://)")


@dataclasses.dataclass(frozen=True)
class Url:
    """A parsed broker URL.

    The password is kept but never shown: ``str()`` and ``repr()`` mask it, so a
    ``Url`` can go into any log line. ``secret()`` gives the full text back for
    the rare place that must pass it on.

    A URL may name more brokers to fail over to (the other nodes of a
    cluster): ``alternates`` holds them, and :meth:`each` gives all of them
    in order, each on its own. The other fields are the first broker's.

    Example::

        >>> url = Url.parse("proton+amqps://gofer:s3cret@broker.example.com/prod")
        >>> (url.adapter, url.host, url.port, url.tls, url.virtual_host)
        ('proton', 'broker.example.com', 5671, True, 'prod')
        >>> str(url)
        'proton+amqps://gofer:***@broker.example.com:5671/prod'
        >>> [each.port for each in Url.parse("amqp://h1,amqp://h2:5673").each()]
        [5672, 5673]
    """

    scheme: str
    host: str
    port: int
    adapter: str | None = None
    userid: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    virtual_host: str | None = None
    alternates: tuple[Url, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Url:
        """Parse a broker URL, or several separated by commas.

        Args:
            text: the URL; the adapter prefix, credentials, port and virtual
                host are optional.

        Returns:
            The parsed URL; the port defaults by scheme (5672 plain, 5671 TLS).
            The second and later URLs of a list are its ``alternates``.

        Raises:
            InvalidURLError: the text is not a broker URL of a known scheme,
                or the URLs of a list name different adapters.
        """
        if not isinstance(text, str) or "://" not in text:
            raise InvalidURLError(f"not a broker URL: {_masked_text(text)!r}")
        first, *others = (cls._parse_one(part) for part in _NEXT_URL.split(text.strip()))
        alternates = []
        for other in others:
            if other.adapter is not None and other.adapter != first.adapter:
                raise InvalidURLError(
                    f"the brokers of {_masked_text(text)!r} name different adapters "
                    f"({first.adapter or 'the default'} and {other.adapter})"
                )
            alternates.append(dataclasses.replace(other, adapter=first.adapter))
        return dataclasses.replace(first, alternates=tuple(alternates)) if alternates else first

    def each(self) -> Iterator[Url]:
        """Every broker this URL names, in the order given, each without alternates."""
        yield dataclasses.replace(self, alternates=()) if self.alternates else self
        yield from self.alternates

    @classmethod
    def _parse_one(cls, text: str) -> Url:
        if "://" not in text:
            raise InvalidURLError(f"not a broker URL: {_masked_text(text)!r}")
        head, rest = text.split("://", 1)
        adapter, _, scheme = head.rpartition("+")
        scheme = scheme.lower()
        if scheme not in PLAIN_SCHEMES | TLS_SCHEMES:
            raise InvalidURLError(
                f"unknown scheme {scheme!r} in {_masked_text(text)!r}: "
                f"expected one of {', '.join(sorted(PLAIN_SCHEMES | TLS_SCHEMES))}"
            )
        try:
            parts = urlsplit(f"{scheme}://{rest}")
            port = parts.port
        except ValueError as exc:
            raise InvalidURLError(f"bad broker URL {_masked_text(text)!r}: {exc}") from exc
        if not parts.hostname:
            raise InvalidURLError(f"no host in broker URL {_masked_text(text)!r}")
        if parts.query or parts.fragment:
            raise InvalidURLError(f"unexpected query or fragment in {_masked_text(text)!r}")
        tls = scheme in TLS_SCHEMES
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if scheme == "memory":  # the in-process test broker (gofer.testing) has its own adapter
            adapter = adapter or "memory"
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=port if port is not None else DEFAULT_PORTS[tls],
            adapter=adapter or None,
            userid=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            virtual_host=unquote(path) if path else None,
        )

    @property
    def tls(self) -> bool:
        """True when the scheme asks for TLS (``amqps`` or ``ssl``)."""
        return self.scheme in TLS_SCHEMES

    def _format(self, password: str | None, encode: bool = False) -> str:
        def text(part: str) -> str:
            return quote(part, safe="") if encode else part

        memory = self.scheme == "memory"
        prefix = (
            f"{self.adapter}+" if self.adapter and not (memory and self.adapter == "memory") else ""
        )
        auth = ""
        if self.userid is not None:
            auth = text(self.userid)
            auth += "" if password is None else f":{text(password)}"
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        vhost = f"/{text(self.virtual_host)}" if self.virtual_host else ""
        port = "" if memory else f":{self.port}"
        return f"{prefix}{self.scheme}://{auth}{host}{port}{vhost}"

    def __str__(self) -> str:
        return ",".join(
            each._format(None if each.password is None else "***") for each in self.each()
        )

    def secret(self) -> str:
        """The URL with its password, for passing on; never log this.

        The user, password and virtual host are percent-encoded, so that the
        text parses back to this URL whatever characters they hold (a
        password with ``/``, ``?``, ``#`` or ``@``, say).
        """
        return ",".join(each._format(each.password, encode=True) for each in self.each())

    def passwords(self) -> list[str]:
        """The passwords of every broker named, for redacting them from text."""
        return [each.password for each in self.each() if each.password]

    def without_adapter(self) -> Url:
        """The same URL without the adapter prefix."""
        return dataclasses.replace(
            self,
            adapter=None,
            alternates=tuple(dataclasses.replace(each, adapter=None) for each in self.alternates),
        )


class URL:
    """The existing gofer's ``URL``: a broker URL's parts as attributes.

    A URL without a scheme is an ``amqp://`` one, as it was there. ``str()``
    masks the password (so the object can be logged); ``canonical`` has it.

    Example::

        >>> url = URL("qpid+amqps://admin:pw@mq.example.com/vh")
        >>> (url.adapter, url.scheme, url.host, url.port, url.path, url.is_ssl())
        ('qpid', 'amqps', 'mq.example.com', 5671, 'vh', True)
        >>> URL("localhost").canonical
        'amqp://localhost'

    Raises:
        InvalidURLError: the text is not a broker URL.
    """

    def __init__(self, url: str) -> None:
        self.input = url
        self.parsed = Url.parse(url if "://" in url else f"amqp://{url}")
        self.adapter = self.parsed.adapter
        self.scheme = self.parsed.scheme
        self.host = self.parsed.host
        self.port = self.parsed.port
        self.userid = self.parsed.userid
        self.password = self.parsed.password
        self.path = self.parsed.virtual_host

    @property
    def canonical(self) -> str:
        """``scheme://[user:password@]host[:port]``: no adapter, the port only if not a default."""
        return self._format(self.password)

    def _format(self, password: str | None) -> str:
        auth = ""
        if self.userid:
            auth = f"{self.userid}@" if password is None else f"{self.userid}:{password}@"
        port = "" if self.port in DEFAULT_PORTS.values() else f":{self.port}"
        return f"{self.scheme}://{auth}{self.host}{port}"

    def is_ssl(self) -> bool:
        """True when the scheme asks for TLS."""
        return self.parsed.tls

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URL) and other.canonical == self.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    def __str__(self) -> str:
        return self._format(None if self.password is None else "***")

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"


def _masked_text(text: object) -> str:
    """Mask the password of an unparsed URL for an error message."""
    value = str(text)
    if "://" in value and "@" in value:
        head, rest = value.split("://", 1)
        auth, _, tail = rest.rpartition("@")
        if ":" in auth:
            auth = auth.split(":", 1)[0] + ":***"
        return f"{head}://{auth}@{tail}"
    return value
