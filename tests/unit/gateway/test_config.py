"""The gateway's configuration file and its credentials: parsed once, wrong values named."""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path

import pytest

from gofer.cli import gateway as gateway_command
from gofer.errors import ConfigError
from gofer.gateway import config, service
from gofer.gateway.security import Gatekeeper, UnauthorizedError

REPO = Path(__file__).resolve().parents[3]
TOKEN = "s" * 20


def test_the_shipped_example_parses_and_refuses_callers_until_given_tokens() -> None:
    shipped = config.load(REPO / "etc/gofer/gateway.conf")
    assert (shipped.host, shipped.port) == ("127.0.0.1", 8080)
    assert shipped.state_dir == Path("/var/lib/gofer/gateway")
    assert shipped.tokens == ()
    assert shipped.anonymous is None
    assert shipped.basic is None
    with pytest.raises(UnauthorizedError):
        Gatekeeper(shipped).identify(None)


def test_tokens_grants_and_durations_are_read() -> None:
    parsed = config.parse(
        {
            "main": {"listen": "[::1]:9000", "max_body": "2048"},
            "calls": {"ttl": "5m", "keep": "2h"},
            "token:ci": {"token": TOKEN, "agents": "web-*, db-1", "classes": "Package"},
        }
    )
    assert (parsed.host, parsed.port, parsed.max_body) == ("::1", 9000, 2048)
    assert (parsed.ttl, parsed.keep) == (300.0, 7200.0)
    (token,) = parsed.tokens
    assert token.grant.allows("web-3", "Package")
    assert token.grant.allows("db-1", "Package")
    assert not token.grant.allows("db-2", "Package")
    assert not token.grant.allows("web-3", "Admin")
    assert TOKEN not in repr(token)


@pytest.mark.parametrize(
    ("sections", "names"),
    [
        ({"main": {"listen": "8080"}}, "listen"),
        ({"main": {"max_body": "big"}}, "max_body"),
        ({"calls": {"ttl": "soon"}}, "ttl"),
        ({"token:ci": {"token": "short", "agents": "*"}}, "token"),
        ({"token:ci": {"token": TOKEN}}, "agents"),
        (
            {
                "token:a": {"token": TOKEN, "agents": "*"},
                "token:b": {"token": TOKEN, "agents": "*"},
            },
            "same",
        ),
        ({"basic": {"enabled": "perhaps"}}, "enabled"),
    ],
)
def test_wrong_values_are_config_errors_naming_the_key(
    sections: dict[str, dict[str, str]], names: str
) -> None:
    with pytest.raises(ConfigError, match=names):
        config.parse(sections, "/etc/gofer/gateway.conf")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_are_checked_by_the_broker_once_then_remembered() -> None:
    checked: list[tuple[str, str]] = []

    def broker_check(credentials: tuple[str, str]) -> None:
        checked.append(credentials)
        if credentials[1] != "right":
            raise UnauthorizedError("refused")

    settings = config.parse({"basic": {"enabled": "1", "agents": "web-*"}})
    gatekeeper = Gatekeeper(settings, check_basic=broker_check)
    header = basic("alice", "right")
    assert gatekeeper.needs_broker(header)
    caller = gatekeeper.identify(header)
    assert (caller.name, caller.credentials) == ("basic:alice", ("alice", "right"))
    assert caller.grant.allows("web-1", "Anything")
    assert not gatekeeper.needs_broker(header)
    gatekeeper.identify(header)
    assert checked == [("alice", "right")]
    with pytest.raises(UnauthorizedError):
        gatekeeper.identify(basic("alice", "wrong"))
    for malformed in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        with pytest.raises(UnauthorizedError, match="malformed"):
            gatekeeper.identify(malformed)


def test_tls_serves_with_the_configured_certificate_and_a_bad_one_is_a_config_error(
    tmp_path: Path,
) -> None:
    certificate, key = tmp_path / "gateway.pem", tmp_path / "gateway.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ed25519",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=gw",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    settings = config.parse({"tls": {"certificate": str(certificate), "key": str(key)}})
    context = service.tls_context(settings)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert service.tls_context(config.parse({})) is None
    with pytest.raises(ConfigError, match="certificate"):
        service.tls_context(config.parse({"tls": {"certificate": str(key)}}))


def test_the_command_exits_78_on_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gateway_command.main(["--config", str(tmp_path / "missing.conf")]) == 78
    assert "missing.conf" in capsys.readouterr().err
    wrong = tmp_path / "gateway.conf"
    wrong.write_text("[token:ci]\ntoken=short\nagents=*\n")
    assert gateway_command.main(["--config", str(wrong)]) == 78
    assert "token" in capsys.readouterr().err
