"""goferd's logging: password masking, levels, targets, and the journald datagram format."""

from __future__ import annotations

import json
import logging
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.agent import logs
from gofer.agent.logs import PasswordFilter, configure, encode_journal_fields, mask
from gofer.errors import ConfigError

LOGGERS = ("gofer", "gofer.agent", "gofer.messaging", "gofer.test")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test leaves the root logger's handlers and the levels as it found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A fake journald: a datagram socket the handler is pointed at."""
    path = tmp_path / "journal.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setattr(logs, "JOURNAL_SOCKET", str(path))
        yield sock


def parse_journal(data: bytes) -> dict[str, str]:
    """Decode journald's native protocol (both the KEY=VALUE and the length-prefixed form)."""
    fields: dict[str, str] = {}
    while data:
        line, _, rest = data.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            data = rest
        else:
            (size,) = struct.unpack("<Q", rest[:8])
            key, value = line, rest[8 : 8 + size]
            assert rest[8 + size : 9 + size] == b"\n"
            data = rest[9 + size :]
        fields[key.decode()] = value.decode()
    return fields


def receive(sock: socket.socket, logger: str) -> dict[str, str]:
    """The next record the fake journal got from ``logger`` (other threads may log too)."""
    while True:
        fields = parse_journal(sock.recv(1 << 20))
        if fields["LOGGER"] == logger:
            return fields


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amqp://gofer:s3cret@broker:5672/prod", "amqp://gofer:***@broker:5672/prod"),
        ("url proton+amqps://u:pw@b:5671 failed", "url proton+amqps://u:***@b:5671 failed"),
        ("qpid+ssl://:pw@b", "qpid+ssl://:***@b"),
        ("['amqp://a:x@h1', 'amqp://b:y@h2']", "['amqp://a:***@h1', 'amqp://b:***@h2']"),
        ("password=hunter2 user=root", "password=*** user=root"),
        ("login?user=a&password=hunter2&x=1", "login?user=a&password=***&x=1"),
        ("{'user': 'a', 'password': 'two words'}", "{'user': 'a', 'password': '***'}"),
        ('{"db_passwd": "x", "n": 1}', '{"db_passwd": "***", "n": 1}'),
        ("PASSWORD: hunter2", "PASSWORD: ***"),
        ("secret=abc", "secret=***"),
        ("amqp://broker:5672/prod", "amqp://broker:5672/prod"),
        ("amqp://[::1]:5672", "amqp://[::1]:5672"),
        ("mail root@example.com", "mail root@example.com"),
        ("amqp://gofer:***@broker", "amqp://gofer:***@broker"),
    ],
)
def test_mask(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_mask_password_with_at_sign() -> None:
    masked = mask("amqp://gofer:p@ss/w@rd@broker/vh")
    assert masked == "amqp://gofer:***@broker/vh"


def record(msg: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("gofer.test", logging.INFO, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


def test_filter_masks_percent_arguments() -> None:
    entry = record("connecting to %s as %r", "amqp://u:hunter2@b", {"password": "hunter2"})
    assert PasswordFilter().filter(entry) is True
    message = entry.getMessage()
    assert "hunter2" not in message
    assert message == "connecting to amqp://u:***@b as {'password': '***'}"


def test_filter_leaves_clean_records_alone() -> None:
    entry = record("loaded %d plugins", 3)
    PasswordFilter().filter(entry)
    assert (entry.msg, entry.args) == ("loaded %d plugins", (3,))


def test_filter_masks_exception_text() -> None:
    try:
        raise ValueError("cannot reach amqp://u:hunter2@b")
    except ValueError:
        entry = record("failed", exc_info=sys.exc_info())
    PasswordFilter().filter(entry)
    assert entry.exc_text is not None
    assert "hunter2" not in entry.exc_text
    assert "amqp://u:***@b" in entry.exc_text
    assert "hunter2" not in logging.Formatter().format(entry)


def test_filter_keeps_a_bad_format_for_the_handler_to_report() -> None:
    entry = record("%d plugins", "three")
    assert PasswordFilter().filter(entry) is True


def test_configured_handler_masks(capsys: pytest.CaptureFixture[str]) -> None:
    configure({}, target="stderr")
    logging.getLogger("gofer.test").warning("url %s", "amqp://gofer:hunter2@broker")
    err = capsys.readouterr().err
    assert "amqp://gofer:***@broker" in err
    assert "hunter2" not in err
    assert " WARNING [MainThread] gofer.test: url " in err


def test_levels_applied() -> None:
    configure(
        {"root": "warning", "gofer.agent": "DEBUG", "gofer.messaging": "Info"}, target="stderr"
    )
    assert logging.getLogger().level == logging.WARNING
    assert logging.getLogger("gofer.agent").level == logging.DEBUG
    assert logging.getLogger("gofer.messaging").level == logging.INFO


def test_root_defaults_to_info() -> None:
    configure({"gofer": "WARN"}, target="stderr")
    assert logging.getLogger().level == logging.INFO
    assert logging.getLogger("gofer").level == logging.WARNING


def test_unknown_level_changes_nothing() -> None:
    handlers = list(logging.getLogger().handlers)
    with pytest.raises(ConfigError, match="unknown log level 'loud'") as caught:
        configure({"gofer.agent": "loud"}, target="stderr")
    assert (caught.value.section, caught.value.key) == ("logging", "gofer.agent")
    assert logging.getLogger().handlers == handlers


def test_unknown_target() -> None:
    with pytest.raises(ConfigError, match="unknown log target 'file'"):
        configure({}, target="file")


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if h.get_name() == "goferd"]


def test_configuring_again_replaces_the_handlers() -> None:
    configure({}, target="stderr")
    configure({}, target="stderr")
    assert len(ours()) == 1
    assert all(isinstance(f, PasswordFilter) for f in ours()[0].filters)


def test_auto_chooses_journald_under_systemd(
    journal: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")
    assert configure({}, foreground_stderr=False) == "journald"


def test_auto_chooses_stderr_outside_systemd(
    journal: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    assert configure({}) == "stderr"


def test_journald_without_socket_falls_back_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(logs, "JOURNAL_SOCKET", str(tmp_path / "missing"))
    assert configure({}, target="journald") == "stderr"
    assert "no journal socket" in caplog.text


def test_foreground_also_writes_to_a_terminal(
    journal: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "_stderr_is_terminal", lambda: True)
    configure({}, target="journald")
    assert sorted(type(h).__name__ for h in ours()) == ["JournalHandler", "StreamHandler"]


def test_syslog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setattr(logs, "SYSLOG_SOCKET", str(path))
        assert configure({}, target="syslog", foreground_stderr=False) == "syslog"
        logging.getLogger("gofer.test").warning("secret=%s", "hunter2")
        data = sock.recv(65536)
    # <daemon(3) * 8 + warning(4)>
    assert data.startswith(b"<28>goferd[")
    assert data.endswith(b"WARNING [MainThread] gofer.test: secret=***\x00")


def test_syslog_without_socket_falls_back_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "SYSLOG_SOCKET", str(tmp_path / "missing"))
    assert configure({}, target="syslog") == "stderr"


def test_journal_field_encoding() -> None:
    data = encode_journal_fields([("PRIORITY", "6"), ("MESSAGE", "two\nlines")])
    assert data == b"PRIORITY=6\nMESSAGE\n" + struct.pack("<Q", 9) + b"two\nlines\n"


def test_journald_datagram(journal: socket.socket) -> None:
    assert configure({}, target="journald", foreground_stderr=False) == "journald"
    logging.getLogger("gofer.test").warning("broker %s down", "amqp://u:hunter2@b")
    fields = receive(journal, "gofer.test")
    assert fields == {
        "MESSAGE": "[MainThread] gofer.test: broker amqp://u:***@b down",
        "PRIORITY": "4",
        "SYSLOG_IDENTIFIER": "goferd",
        "CODE_FILE": __file__,
        "CODE_LINE": fields["CODE_LINE"],
        "CODE_FUNC": "test_journald_datagram",
        "LOGGER": "gofer.test",
        "THREAD_NAME": "MainThread",
    }
    assert int(fields["CODE_LINE"]) > 0


def test_journald_traceback_uses_the_length_form(journal: socket.socket) -> None:
    configure({"root": "debug"}, target="journald", foreground_stderr=False)
    try:
        raise RuntimeError("amqp://u:hunter2@b refused")
    except RuntimeError:
        logging.getLogger("gofer.test").exception("plugin failed")
    fields = receive(journal, "gofer.test")
    assert fields["PRIORITY"] == "3"
    assert fields["MESSAGE"].startswith("[MainThread] gofer.test: plugin failed\nTraceback")
    assert "RuntimeError: amqp://u:***@b refused" in fields["MESSAGE"]
    assert "hunter2" not in fields["MESSAGE"]


def test_journald_debug_priority(journal: socket.socket) -> None:
    configure({"gofer.test": "debug"}, target="journald", foreground_stderr=False)
    logging.getLogger("gofer.test").debug("details")
    assert receive(journal, "gofer.test")["PRIORITY"] == "7"


def test_journal_gone_writes_to_stderr(
    journal: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    configure({}, target="journald", foreground_stderr=False)
    journal.close()
    Path(logs.JOURNAL_SOCKET).unlink()
    logging.getLogger("gofer.test").error("still here")
    assert "goferd: [MainThread] gofer.test: still here" in capsys.readouterr().err


def test_json_lines_carry_the_record_and_mask_passwords(
    capsys: pytest.CaptureFixture[str],
) -> None:
    used = logs.configure({}, target="json")
    try:
        logger = logging.getLogger("gofer.test.json")
        logger.warning("broker amqp://u:%s@h refused", "s3cret")
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("it failed")
    finally:
        logs.configure({}, target="stderr")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert used == "json"
    assert lines[0]["level"] == "WARNING"
    assert lines[0]["logger"] == "gofer.test.json"
    assert "s3cret" not in lines[0]["message"]
    assert lines[0]["time"].endswith("Z")
    assert "ValueError: bad" in lines[1]["exception"]
