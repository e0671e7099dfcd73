"""Shell as a plugin uses it: output, exit status, progress lines, failures to start, stopping."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gofer.rmi.context import Context, activate
from gofer.rmi.shell import CANNOT_EXECUTE, NOT_FOUND, REPORT_INTERVAL, TIMED_OUT, Shell


def gone(pid: int, within: float = 3.0) -> bool:
    """True once ``pid`` no longer runs (a zombie left to a non-reaping init counts as gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in {"Z", "X"}:
            return True
        time.sleep(0.02)
    return False


class Lines:
    """A reporter collecting progress details, optionally cancelling after the first one."""

    def __init__(self, cancel_after_first: bool = False) -> None:
        self.details: list[Any] = []
        self.cancel = threading.Event()
        self.cancel_after_first = cancel_after_first

    def __call__(self, total: int, completed: int, details: Any) -> None:
        self.details.append(details)
        if self.cancel_after_first:
            self.cancel.set()

    def context(self) -> Context:
        return Context("sn-shell", None, self, self.cancel.is_set)


def test_output_and_status_of_a_command() -> None:
    status, output = Shell().run("sh", "-c", "echo out; echo err >&2; exit 3")
    assert status == 3
    assert output == "out\nerr\n"


def test_a_list_of_arguments_is_accepted() -> None:
    assert Shell().run(["echo", "a", "b"]) == (0, "a b\n")


def test_arguments_never_go_through_a_shell() -> None:
    status, output = Shell().run("echo", "$HOME; echo injected")
    assert (status, output) == (0, "$HOME; echo injected\n")


def test_a_shell_only_when_asked_for() -> None:
    assert Shell().run("echo a | tr a b", shell=True) == (0, "b\n")


def test_bad_arguments_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no command"):
        Shell().run()
    with pytest.raises(ValueError, match="one command string"):
        Shell().run("echo", "a", shell=True)


def test_every_line_is_reported_as_progress_details() -> None:
    lines = Lines()
    with activate(lines.context()):
        status, output = Shell().run("printf", "one\\ntwo\\r\\nthree")
    assert status == 0
    assert output == "one\ntwo\r\nthree"
    assert "\n".join(lines.details).split("\n") == ["one", "two", "three"]


def test_many_lines_make_a_few_reports_a_second_and_none_is_lost() -> None:
    lines = Lines()
    started = time.monotonic()
    with activate(lines.context()):
        status, _ = Shell().run("sh", "-c", "seq 1 20000; sleep 0.6; echo last")
    took = time.monotonic() - started
    assert status == 0
    assert "\n".join(lines.details).split("\n") == [*map(str, range(1, 20001)), "last"]
    assert len(lines.details) <= took / REPORT_INTERVAL + 2, len(lines.details)


def test_works_without_a_call_context() -> None:
    assert Shell().run("true") == (0, "")


def test_undecodable_output_is_replaced_not_fatal() -> None:
    status, output = Shell().run("printf", "caf\\351\\n")
    assert status == 0
    assert output == "caf\ufffd\n"


def test_a_missing_program_is_status_127_with_a_clear_message() -> None:
    status, output = Shell().run("no-such-program-gofer", "arg")
    assert status == NOT_FOUND == 127
    assert "no-such-program-gofer" in output
    assert "No such file or directory" in output


def test_a_program_that_cannot_run_is_status_126(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hi\n")
    status, output = Shell().run(str(script))
    assert status == CANNOT_EXECUTE == 126
    assert "Permission denied" in output


def test_death_by_signal_is_128_plus_the_signal() -> None:
    status, _ = Shell().run("sh", "-c", "kill -KILL $$")
    assert status == 128 + signal.SIGKILL


@pytest.mark.timeout(10)
def test_a_background_child_holding_the_output_does_not_block() -> None:
    started = time.monotonic()
    status, output = Shell().run("sh", "-c", "sleep 30 & echo $!")
    assert status == 0
    assert time.monotonic() - started < 2
    os.kill(int(output), signal.SIGKILL)


@pytest.mark.timeout(10)
def test_a_timeout_stops_the_command_and_what_it_started() -> None:
    started = time.monotonic()
    status, output = Shell(grace=1).run("sh", "-c", "sleep 30 & echo $!; wait", timeout=0.5)
    assert status == TIMED_OUT
    assert time.monotonic() - started < 3
    assert gone(int(output))


@pytest.mark.timeout(10)
def test_cancel_stops_the_command_and_what_it_started() -> None:
    lines = Lines(cancel_after_first=True)
    started = time.monotonic()
    with activate(lines.context()):
        status, output = Shell(grace=1).run("sh", "-c", "sleep 30 & echo $!; wait")
    assert time.monotonic() - started < 3
    assert status != 0
    assert output.strip() == lines.details[0]
    assert gone(int(lines.details[0]))


@pytest.mark.timeout(10)
def test_a_command_ignoring_sigterm_is_killed_after_the_grace() -> None:
    lines = Lines(cancel_after_first=True)
    started = time.monotonic()
    with activate(lines.context()):
        status, _ = Shell(grace=0.3).run("sh", "-c", "trap '' TERM; echo ready; sleep 30")
    assert 0.3 <= time.monotonic() - started < 3
    assert status == 128 + signal.SIGKILL
