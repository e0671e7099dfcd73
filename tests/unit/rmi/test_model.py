"""The direct and fork execution models as a plugin author sees them."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gofer.errors import RmiError
from gofer.rmi import model
from gofer.rmi.context import Context
from gofer.rmi.model import (
    DIRECT,
    FORK,
    CancelledError,
    Invocation,
    RemoteFailure,
    UnknownModelError,
    json_safe,
    run,
)
from gofer.rmi.shell import Shell

BIG = 32 << 20
BOTH = pytest.mark.parametrize("model", [DIRECT, FORK])


class Caller:
    """The dispatcher's side of a call: records progress, cancels on demand."""

    def __init__(self, cancel_on_report: bool = False) -> None:
        self.reports: list[tuple[int, int, Any]] = []
        self.cancel = threading.Event()
        self.cancel_on_report = cancel_on_report

    def report(self, total: int, completed: int, details: Any) -> None:
        self.reports.append((total, completed, details))
        if self.cancel_on_report:
            self.cancel.set()

    def context(self) -> Context:
        return Context("sn-model", {"task": 7}, self.report, self.cancel.is_set)


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


def zombies() -> list[int]:
    """Our children that exited and were never reaped."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(entry.name))
    return found


# Targets: module-level so that the fork child's results can name them.


def double(x: int, *, plus: int = 0) -> int:
    return 2 * x + plus


def whoami() -> tuple[str, Any]:
    context = Context.current()
    return context.sn, context.data


def count_to(n: int) -> str:
    ctx = Context.current()
    ctx.progress.total = n
    for i in range(n):
        ctx.progress.completed += 1
        ctx.progress.details = f"step {i}"
        ctx.progress.report()
    return "done"


class QuotaError(Exception):
    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message, limit)
        self.limit = limit


def over_quota() -> None:
    raise QuotaError("over quota", 10)


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message, threading.Lock())
        self.lock = threading.Lock()


def raise_unpicklable() -> None:
    raise Unpicklable("cannot pickle me")


def return_lock() -> Any:
    return threading.Lock()


def return_big() -> str:
    return "x" * BIG


def raise_big() -> None:
    raise ValueError("y" * BIG)


def wait_for_cancel() -> str:
    ctx = Context.current()
    ctx.progress.report()
    while not ctx.cancelled():
        time.sleep(0.01)
    return "stopped early"


def sleep_with_grandchild() -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    ctx = Context.current()
    ctx.progress.details = sleeper.pid
    ctx.progress.report()
    time.sleep(60)


def shell_sleep() -> tuple[int, str]:
    return Shell().run("sh", "-c", "echo $$; exec sleep 60")


def ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Context.current().progress.report()
    time.sleep(60)


def exit_quietly(status: int) -> None:
    os._exit(status)


def die_by(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(10)


def exit_leaving_pipe_held() -> None:
    holder = os.fork()
    if holder == 0:
        time.sleep(3)
        os._exit(0)
    Context.current().progress.details = holder
    Context.current().progress.report()
    os._exit(5)


def sigusr1_handler() -> str:
    return str(signal.getsignal(signal.SIGUSR1))


def call_exit() -> None:
    raise SystemExit(4)


@BOTH
def test_return_value_with_args_and_kwargs(model: str) -> None:
    outcome = run(model, Invocation(double, (20,), {"plus": 2}), Caller().context())
    assert outcome.retval == 42
    assert outcome.error is None
    assert not outcome.failed


@BOTH
def test_the_context_is_current_inside_the_call(model: str) -> None:
    outcome = run(model, Invocation(whoami), Caller().context())
    assert tuple(outcome.retval) == ("sn-model", {"task": 7})


@BOTH
def test_progress_reaches_the_reporter_in_order(model: str) -> None:
    caller = Caller()
    outcome = run(model, Invocation(count_to, (3,)), caller.context())
    assert outcome.retval == "done"
    # Setting total is sent at once; each report() after it exactly once.
    assert caller.reports == [(3, 0, None), (3, 1, "step 0"), (3, 2, "step 1"), (3, 3, "step 2")]


@BOTH
def test_an_exception_becomes_a_remote_failure(model: str) -> None:
    outcome = run(model, Invocation(over_quota), Caller().context())
    assert outcome.failed
    error = outcome.error
    assert error is not None
    assert (error.xmodule, error.xclass) == (__name__, "QuotaError")
    assert error.xargs == ["over quota", 10]
    assert error.xstate["limit"] == 10
    assert "over_quota" in error.exval
    assert error.xstate["trace"] == error.exval
    json.dumps(error.result())


@BOTH
def test_an_unpicklable_exception_keeps_its_class_and_args(model: str) -> None:
    error = run(model, Invocation(raise_unpicklable), Caller().context()).error
    assert error is not None
    assert error.xclass == "Unpicklable"
    assert error.xargs[0] == "cannot pickle me"
    assert "lock" in error.xargs[1]
    assert "lock" in error.xstate["lock"]


@BOTH
def test_system_exit_is_a_failure_not_an_exit(model: str) -> None:
    error = run(model, Invocation(call_exit), Caller().context()).error
    assert error is not None
    assert (error.xclass, error.xargs) == ("SystemExit", [4])


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(UnknownModelError, match="thread"):
        run("thread", Invocation(double, (1,)), Caller().context())


@pytest.mark.timeout(10)
def test_direct_cancel_is_cooperative() -> None:
    caller = Caller(cancel_on_report=True)
    outcome = run(DIRECT, Invocation(wait_for_cancel), caller.context())
    assert outcome.retval == "stopped early"


@pytest.mark.timeout(10)
def test_fork_cancel_kills_the_child_and_its_grandchildren() -> None:
    caller = Caller(cancel_on_report=True)
    started = time.monotonic()
    outcome = run(FORK, Invocation(sleep_with_grandchild), caller.context(), grace=1)
    assert time.monotonic() - started < 5
    assert outcome.error is not None
    assert outcome.error.xclass == "CancelledError"
    assert outcome.error.xmodule == "gofer.rmi.model"
    assert gone(caller.reports[0][2])


@pytest.mark.timeout(10)
def test_fork_cancel_stops_a_shell_command_in_its_own_session() -> None:
    caller = Caller(cancel_on_report=True)
    outcome = run(FORK, Invocation(shell_sleep), caller.context(), grace=1)
    assert outcome.error is not None
    assert outcome.error.xclass == "CancelledError"
    assert gone(int(caller.reports[0][2]))


@pytest.mark.timeout(10)
def test_fork_cancel_kills_a_child_ignoring_sigterm_after_the_grace() -> None:
    caller = Caller(cancel_on_report=True)
    started = time.monotonic()
    outcome = run(FORK, Invocation(ignore_sigterm), caller.context(), grace=0.3)
    assert 0.3 <= time.monotonic() - started < 3
    assert outcome.error is not None
    assert outcome.error.xclass == "CancelledError"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("status", [0, 3])
def test_a_child_exiting_without_a_result_is_a_failure(status: int) -> None:
    error = run(FORK, Invocation(exit_quietly, (status,)), Caller().context()).error
    assert error is not None
    assert error.xclass == "ChildDiedError"
    assert f"exited with status {status} without a result" in error.xargs[0]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("signum", [signal.SIGSEGV, signal.SIGKILL])
def test_a_child_killed_by_a_signal_is_a_failure(signum: signal.Signals) -> None:
    error = run(FORK, Invocation(die_by, (signum,)), Caller().context()).error
    assert error is not None
    assert error.xclass == "ChildDiedError"
    assert f"killed by signal {signum.name}" in error.xargs[0]


@pytest.mark.timeout(10)
def test_a_dead_child_is_noticed_while_something_else_holds_its_pipe() -> None:
    caller = Caller()
    started = time.monotonic()
    error = run(FORK, Invocation(exit_leaving_pipe_held), caller.context()).error
    assert time.monotonic() - started < 2
    assert error is not None
    assert "exited with status 5" in error.xargs[0]
    os.kill(caller.reports[0][2], signal.SIGKILL)


@pytest.mark.timeout(20)
def test_a_32_mib_return_value_comes_back() -> None:
    outcome = run(FORK, Invocation(return_big), Caller().context())
    assert outcome.retval == "x" * BIG


@pytest.mark.timeout(20)
def test_a_32_mib_exception_comes_back() -> None:
    error = run(FORK, Invocation(raise_big), Caller().context()).error
    assert error is not None
    assert error.xclass == "ValueError"
    assert error.xargs == ["y" * BIG]


def test_an_unpicklable_return_value_is_a_clear_failure() -> None:
    error = run(FORK, Invocation(return_lock), Caller().context()).error
    assert error is not None
    assert error.xclass == "TransferError"
    assert "return value (lock) could not be transferred" in error.xargs[0]


def test_the_child_does_not_inherit_the_agents_signal_handlers() -> None:
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    try:
        outcome = run(FORK, Invocation(sigusr1_handler), Caller().context())
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert outcome.retval == str(signal.SIG_DFL)


def read_stdin_and_print() -> tuple[str, str]:
    print("printed by the method")
    return sys.stdin.read(), os.readlink("/proc/self/fd/0")


def test_the_child_reads_no_terminal_and_its_prints_never_reach_its_pipe() -> None:
    """An agent started with stdout closed: the result pipe may take fd 1."""
    script = (
        "import os, sys\n"
        "from gofer.rmi.context import Context\n"
        "from gofer.rmi.model import FORK, Invocation, run\n"
        "from tests.unit.rmi.test_model import read_stdin_and_print\n"
        "os.close(1)\n"
        "context = Context('sn', None, lambda *report: None, lambda: False)\n"
        "outcome = run(FORK, Invocation(read_stdin_and_print), context)\n"
        "sys.stderr.write(repr((outcome.retval, outcome.error)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input="the agent's terminal\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stderr == repr((("", os.devnull), None)), done.stderr


@pytest.mark.timeout(30)
def test_fork_calls_from_worker_threads_leave_no_fd_thread_or_zombie_behind() -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    run(FORK, Invocation(double, (1,)), Caller().context())  # warm up lazily created fds
    before = fds(), threads(), threading.active_count()
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(
            pool.map(lambda n: run(FORK, Invocation(double, (n,)), Caller().context()), range(200))
        )
    assert [outcome.retval for outcome in outcomes] == [2 * n for n in range(200)]
    deadline = time.monotonic() + 2  # joined threads leave /proc a moment after join()
    while threads() != before[1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (fds(), threads(), threading.active_count()) == before
    assert zombies() == []


class Odd:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Text(str):
    pass


class Huge:
    def __repr__(self) -> str:
        return "z" * 1_000_000


@pytest.fixture
def recursive() -> Iterator[list[Any]]:
    loop: list[Any] = [1]
    loop.append(loop)
    yield loop
    loop.clear()


def test_json_safe_keeps_json_and_reprs_the_rest(recursive: list[Any]) -> None:
    value = {
        "n": 1,
        "f": 1.5,
        "nan": math.nan,
        "t": (1, "a"),
        "s": {3},
        "odd": Odd(),
        "text": Text("plain"),
        (1, 2): None,
        "loop": recursive,
    }
    safe = json_safe(value)
    json.dumps(safe, allow_nan=False)
    assert safe["n"] == 1
    assert safe["f"] == 1.5
    assert safe["nan"] == "nan"
    assert safe["t"] == [1, "a"]
    assert safe["s"] == "{3}"
    assert "Odd" in safe["odd"]
    assert type(safe["text"]) is str
    assert safe["(1, 2)"] is None
    assert safe["loop"][0] == 1
    assert isinstance(safe["loop"][1], str)


def test_json_safe_bounds_depth_and_size() -> None:
    deep: Any = "bottom"
    for _ in range(500):
        deep = [deep]
    json.dumps(json_safe(deep))
    wide = json_safe(list(range(100_000)))
    assert 0 < len(wide) <= 10_000
    assert len(json_safe(Huge())) < 3000


def test_remote_failure_of_an_exception_without_a_traceback() -> None:
    failure = RemoteFailure.from_exception(CancelledError("request x was cancelled"))
    assert issubclass(CancelledError, RmiError)
    assert failure.result() == {
        "xmodule": "gofer.rmi.model",
        "xclass": "CancelledError",
        "xargs": ["request x was cancelled"],
        "xstate": {"trace": failure.exval},
        "exval": "gofer.rmi.model.CancelledError: request x was cancelled\n",
    }


def test_python_312s_fork_warning_is_silenced_for_this_module_only() -> None:
    text = "This process (pid=1) is multi-threaded, use of fork() may lead to deadlocks."
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model._ignore_fork_warning()
        warnings.warn_explicit(text, DeprecationWarning, "model.py", 1, module="gofer.rmi.model")
        with pytest.raises(DeprecationWarning):
            warnings.warn_explicit(text, DeprecationWarning, "other.py", 1, module="other")
