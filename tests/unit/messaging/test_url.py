"""Broker URLs as operators write them in descriptors and callers pass them to Agent()."""

from __future__ import annotations

import pytest

from gofer.errors import InvalidURLError
from gofer.messaging.url import Url


@pytest.mark.parametrize(
    ("text", "adapter", "scheme", "host", "port", "tls"),
    [
        ("amqp://localhost", None, "amqp", "localhost", 5672, False),
        ("tcp://broker", None, "tcp", "broker", 5672, False),
        ("amqps://broker", None, "amqps", "broker", 5671, True),
        ("ssl://broker:5674", None, "ssl", "broker", 5674, True),
        ("qpid+amqp://localhost", "qpid", "amqp", "localhost", 5672, False),
        ("amqp-0-9-1+amqp://h:1234", "amqp-0-9-1", "amqp", "h", 1234, False),
        ("proton+AMQPS://h", "proton", "amqps", "h", 5671, True),
        ("amqp://[::1]:5673", None, "amqp", "::1", 5673, False),
    ],
)
def test_parse(
    text: str, adapter: str | None, scheme: str, host: str, port: int, tls: bool
) -> None:
    url = Url.parse(text)
    assert (url.adapter, url.scheme, url.host, url.port, url.tls) == (
        adapter,
        scheme,
        host,
        port,
        tls,
    )


def test_credentials_and_virtual_host() -> None:
    url = Url.parse("amqp://gofer:p%40ss%3Aword@broker:5672/prod")
    assert (url.userid, url.password, url.virtual_host) == ("gofer", "p@ss:word", "prod")


def test_encoded_slash_is_the_default_virtual_host_name() -> None:
    assert Url.parse("amqp://broker/%2f").virtual_host == "/"
    assert Url.parse("amqp://broker/").virtual_host is None


def test_password_never_shown() -> None:
    url = Url.parse("rabbit+amqp://gofer:hunter2@broker/vh")
    assert "hunter2" not in str(url)
    assert "hunter2" not in repr(url)
    assert str(url) == "rabbit+amqp://gofer:***@broker:5672/vh"
    assert "hunter2" in url.secret()


@pytest.mark.parametrize(
    ("userid", "password", "virtual_host"),
    [("gofer", "p@ss/w:rd?#%", "prod"), ("a:b@c", "x y", "/"), ("me", "plain", "a/b?c")],
)
def test_the_secret_text_parses_back_to_the_same_url(
    userid: str, password: str, virtual_host: str
) -> None:
    """gofer rmi fills in $GOFER_BROKER_PASSWORD this way: any character must survive."""
    url = Url(
        "amqps",
        "broker",
        5671,
        "proton",
        userid=userid,
        password=password,
        virtual_host=virtual_host,
    )
    assert Url.parse(url.secret()) == url


@pytest.mark.parametrize(
    "text",
    ["localhost", "http://localhost", "amqp://", "amqp://host:port", "amqp://h?x=1", "", None, 5],
)
def test_invalid(text: object) -> None:
    with pytest.raises(InvalidURLError):
        Url.parse(text)  # type: ignore[arg-type]


def test_error_does_not_leak_password() -> None:
    with pytest.raises(InvalidURLError) as caught:
        Url.parse("gopher://user:hunter2@host")
    assert "hunter2" not in str(caught.value)


def test_several_brokers_separated_by_commas() -> None:
    url = Url.parse("proton+amqp://u:p,w@h1, amqp://x:y@h2:5673/v,amqps://h3")

    assert [(each.host, each.port) for each in url.each()] == [
        ("h1", 5672),
        ("h2", 5673),
        ("h3", 5671),
    ]
    assert {each.adapter for each in url.each()} == {"proton"}  # the first one's
    assert url.password == "p,w"  # a comma in a password does not split
    assert url.passwords() == ["p,w", "y"]
    assert "p,w" not in str(url)
    assert "y@" not in str(url)
    assert Url.parse(url.secret()) == url


def test_brokers_of_one_url_name_one_adapter() -> None:
    with pytest.raises(InvalidURLError, match="different adapters"):
        Url.parse("amqp://h1,qpid+amqp://h2")


def test_a_bad_broker_in_a_list_is_named() -> None:
    with pytest.raises(InvalidURLError, match="unknown scheme"):
        Url.parse("amqp://h1,http://h2")
