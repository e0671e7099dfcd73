"""``gofer rmi``: argument parsing, output, progress and exit status, with a fake agent."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gofer.cli import main as cli
from gofer.cli import rmi
from gofer.errors import (
    ConnectError,
    MemberNotFound,
    NotAuthorized,
    NotFoundError,
    RemoteError,
    RequestRejectedError,
    RequestTimeoutError,
)
from gofer.messaging.url import Url

SN = "0b7f5a43-6d0e-4b6e-9b1c-3f7f1b8d2a11"
BASE = ["rmi", "-a", "demo", "-t", "Dog.bark"]


class FakeTrigger:
    """A prepared call: reports progress, then returns or raises the outcome."""

    sn = SN

    def __init__(self, agent: FakeAgent) -> None:
        self.agent = agent

    def __call__(self) -> Any:
        for report in self.agent.reports:
            self.agent.options["progress"](report)
        if isinstance(self.agent.outcome, BaseException):
            raise self.agent.outcome
        return self.agent.outcome


class FakeStub:
    def __init__(self, agent: FakeAgent) -> None:
        self.agent = agent

    def __call__(self, *args: Any, **kws: Any) -> FakeStub:
        self.agent.cntr = (args, kws)
        return self

    def __getitem__(self, method: str) -> Callable[..., FakeTrigger]:
        def call(*args: Any, **kws: Any) -> FakeTrigger:
            self.agent.calls.append((method, args, kws))
            return FakeTrigger(self.agent)

        return call


class FakeAgent:
    """Records what the command asked for; ``outcome`` is the result or the exception."""

    def __init__(self) -> None:
        self.outcome: Any = "woof"
        self.reports: list[dict[str, Any]] = []
        self.url = ""
        self.address = ""
        self.options: dict[str, Any] = {}
        self.classname = ""
        self.cntr: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def factory(self, url: str, address: str, **options: Any) -> FakeAgent:
        self.url, self.address, self.options = url, address, options
        return self

    def __getitem__(self, classname: str) -> Callable[[], FakeStub]:
        self.classname = classname
        return lambda: FakeStub(self)


class Run:
    """The outcome of one ``gofer rmi`` run."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err


@pytest.fixture
def agent() -> FakeAgent:
    return FakeAgent()


@pytest.fixture
def gofer(
    agent: FakeAgent, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """Runs ``gofer`` through ``main()`` with the fake agent behind ``run_rmi``."""
    for name in (rmi.PASSWORD_ENV, rmi.SECRET_ENV, rmi.BROKER_PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(rmi, "Agent", agent.factory)

    def gofer(*argv: str) -> Run:
        status = cli.main(list(argv))
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return gofer


# -- parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("2.5", 2.5),
        ("true", True),
        ("null", None),
        ('"x"', "x"),
        ('"3"', "3"),
        ("[1,2]", [1, 2]),
        ('{"a":1}', {"a": 1}),
        ("howdy", "howdy"),
        ("hello world", "hello world"),
        ("", ""),
    ],
)
def test_values_are_json_when_they_parse_else_strings(text: str, expected: object) -> None:
    assert rmi.value(text) == expected


@pytest.mark.parametrize("text", ["[1,", "{a:1}", '"open'])
def test_a_value_that_starts_like_json_must_be_json(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid JSON"):
        rmi.value(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loud=true", ("loud", True)),
        ("n=3", ("n", 3)),
        ("words=a=b", ("words", "a=b")),
        ("name=", ("name", "")),
        ("howdy", (None, "howdy")),
        ("=x", (None, "=x")),
        ("2=x", (None, "2=x")),
        ('"a=b"', (None, "a=b")),
    ],
)
def test_name_equals_value_is_a_keyword_argument(text: str, expected: object) -> None:
    assert rmi.argument(text) == expected


def test_arguments_reach_the_call_in_order(gofer: Callable[..., Run], agent: FakeAgent) -> None:
    run = gofer(*BASE, "hello", "3", "loud=true", "[1,2]", "n=2.5")
    assert run.status == 0
    assert agent.classname == "Dog"
    assert agent.calls == [("bark", ("hello", 3, [1, 2]), {"loud": True, "n": 2.5})]
    assert agent.cntr is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dog.bark", ("Dog", "bark")),
        ("demo.echo", ("demo", "echo")),
        ("my-plugin.echo", ("my-plugin", "echo")),
    ],
)
def test_target_is_split_at_the_last_dot(text: str, expected: tuple[str, str]) -> None:
    assert rmi.target(text) == expected


@pytest.mark.parametrize("text", ["Dogbark", "Dog.", ".bark", "Dog.2bark", "Dog.bark()", "D g.x"])
def test_a_bad_target_is_a_usage_error(gofer: Callable[..., Run], text: str) -> None:
    run = gofer("rmi", "-a", "demo", "-t", text)
    assert run.status == 2
    assert "-t/--target" in run.err


@pytest.mark.parametrize(
    "argv",
    [
        ["rmi", "-t", "Dog.bark"],  # no address
        ["rmi", "-a", "demo"],  # no target
        ["rmi", "-a", "", "-t", "Dog.bark"],
        [*BASE, "-w", "soon"],
        [*BASE, "-w", "-5"],
        [*BASE, "-x", "5y"],
        [*BASE, "--cntr", "rover"],
        [*BASE, "--cntr", "3"],
        [*BASE, "-u", "http://localhost"],
        [*BASE, "a=1", "a=2"],
    ],
)
def test_usage_errors_exit_2(gofer: Callable[..., Run], argv: list[str]) -> None:
    run = gofer(*argv)
    assert run.status == 2
    assert "usage:" in run.err


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30", 30.0), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_wait_and_ttl_take_suffixes(
    gofer: Callable[..., Run], agent: FakeAgent, text: str, expected: float
) -> None:
    assert gofer(*BASE, "-w", text, "-x", text).status == 0
    assert agent.options["wait"] == expected
    assert agent.options["ttl"] == expected


def test_options_reach_the_agent(gofer: Callable[..., Run], agent: FakeAgent) -> None:
    run = gofer(
        *BASE,
        "-u",
        "amqps://broker.example.com",
        "--data",
        '{"task": 7}',
        "--secret",
        "s3",
        "--user",
        "jim",
        "--password",
        "pw",
        "--cacert",
        "/etc/ca.pem",
        "--no-host-validation",
    )
    assert run.status == 0
    assert agent.url == "amqps://broker.example.com"
    assert agent.address == "demo"
    options = agent.options
    assert options["trigger"] == 1  # the serial number is known before sending
    assert options["data"] == {"task": 7}
    assert (options["secret"], options["user"], options["password"]) == ("s3", "jim", "pw")
    assert options["cacert"] == "/etc/ca.pem"
    assert options["host_validation"] is False
    assert "wait" not in options  # the library's default applies


def test_the_password_may_come_from_the_environment(
    gofer: Callable[..., Run], agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(rmi.PASSWORD_ENV, "from-env")
    assert gofer(*BASE, "--user", "jim").status == 0
    assert agent.options["password"] == "from-env"


def test_the_secret_and_broker_password_may_come_from_the_environment(
    gofer: Callable[..., Run], agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On the command line both would show in the process list.
    monkeypatch.setenv(rmi.SECRET_ENV, "shared-from-env")
    monkeypatch.setenv(rmi.BROKER_PASSWORD_ENV, "broker-from-env")
    assert gofer(*BASE, "-u", "amqps://agent@mq.example.com/prod").status == 0
    assert agent.options["secret"] == "shared-from-env"
    assert agent.url == "amqps://agent:broker-from-env@mq.example.com:5671/prod"
    # A password in the URL itself wins; a URL without a user takes none.
    assert gofer(*BASE, "-u", "amqp://agent:given@mq").status == 0
    assert agent.url == "amqp://agent:given@mq"
    assert gofer(*BASE, "-u", "amqp://mq").status == 0
    assert agent.url == "amqp://mq"


def test_a_broker_password_from_the_environment_may_hold_any_character(
    gofer: Callable[..., Run], agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(rmi.BROKER_PASSWORD_ENV, "p@ss/w:rd?#%")
    assert gofer(*BASE, "-u", "amqps://agent@mq.example.com/prod").status == 0
    url = Url.parse(agent.url)
    assert (url.userid, url.password, url.host, url.virtual_host) == (
        "agent",
        "p@ss/w:rd?#%",
        "mq.example.com",
        "prod",
    )


@pytest.mark.parametrize(
    ("text", "args", "kws"),
    [
        ('[["rover"],{"age":3}]', ("rover",), {"age": 3}),
        ('["rover", 3]', ("rover", 3), {}),
        ('{"name":"rover"}', (), {"name": "rover"}),
        ("[]", (), {}),
    ],
)
def test_constructor_arguments(
    gofer: Callable[..., Run], agent: FakeAgent, text: str, args: tuple[Any, ...], kws: Any
) -> None:
    assert gofer(*BASE, "--cntr", text).status == 0
    assert agent.cntr == (args, kws)


# -- output and exit status ------------------------------------------------------


def test_a_string_result_is_printed_as_it_is(gofer: Callable[..., Run], agent: FakeAgent) -> None:
    agent.outcome = 'Yes master. "howdy"'
    run = gofer(*BASE, "howdy")
    assert (run.status, run.out, run.err) == (0, 'Yes master. "howdy"\n', "")


@pytest.mark.parametrize(
    ("result", "printed"),
    [({"a": [1, 2]}, '{\n  "a": [\n    1,\n    2\n  ]\n}\n'), (3, "3\n"), (None, "null\n")],
)
def test_other_results_are_printed_as_json(
    gofer: Callable[..., Run], agent: FakeAgent, result: object, printed: str
) -> None:
    agent.outcome = result
    assert gofer(*BASE).out == printed


def test_asynchronous_calls_print_the_serial_number(
    gofer: Callable[..., Run], agent: FakeAgent
) -> None:
    agent.outcome = SN  # what an asynchronous call returns
    run = gofer(*BASE, "-w", "0", "-r", "replies", "howdy")
    assert (run.status, run.out) == (0, SN + "\n")
    assert agent.options["wait"] == 0
    assert agent.options["reply"] == "replies"


def test_verbose_prints_the_serial_number_first(gofer: Callable[..., Run]) -> None:
    run = gofer(*BASE, "-v")
    assert run.err == f"request {SN}\n"


def test_a_remote_exception_exits_1_with_class_and_message(
    gofer: Callable[..., Run], agent: FakeAgent
) -> None:
    agent.outcome = RemoteError("zoo", "BadDog", ["will not sit"], {}, "Traceback: ...\nBadDog")
    run = gofer(*BASE)
    assert (run.status, run.out, run.err) == (1, "", "BadDog: will not sit\n")


def test_verbose_adds_the_remote_traceback(gofer: Callable[..., Run], agent: FakeAgent) -> None:
    error = ZeroDivisionError("division by zero")
    error.remote_traceback = "Traceback (most recent call last):\nZeroDivisionError\n"  # type: ignore[attr-defined]
    agent.outcome = error
    run = gofer(*BASE, "-v")
    assert run.status == 1
    assert run.err.splitlines()[1:] == [
        "ZeroDivisionError: division by zero",
        "Traceback (most recent call last):",
        "ZeroDivisionError",
    ]


@pytest.mark.parametrize(
    ("error", "printed"),
    [
        (NotAuthorized("Dog.trick(): secret not matched"), "NotAuthorized: Dog.trick(): "),
        (MemberNotFound('"Dog.nope()" not provided'), 'MemberNotFound: "Dog.nope()"'),
        (RemoteError("zoo", "Quiet", [], {}, ""), "Quiet\n"),
        (RemoteError("zoo", "BadDog", ["rex", "no"], {}, ""), "BadDog: ('rex', 'no')"),
    ],
)
def test_rmi_errors_exit_1(
    gofer: Callable[..., Run], agent: FakeAgent, error: Exception, printed: str
) -> None:
    agent.outcome = error
    run = gofer(*BASE)
    assert run.status == 1
    assert run.err.startswith(printed)


def test_a_timeout_exits_3_with_the_serial_number(
    gofer: Callable[..., Run], agent: FakeAgent
) -> None:
    agent.outcome = RequestTimeoutError(SN, 5)
    run = gofer(*BASE, "-w", "5")
    assert (run.status, run.out) == (3, "")
    assert f"serial number: {SN}" in run.err.splitlines()


def test_a_rejection_exits_4_with_code_and_description(
    gofer: Callable[..., Run], agent: FakeAgent
) -> None:
    agent.outcome = RequestRejectedError(SN, "model.version", "version 0 is not supported")
    run = gofer(*BASE)
    assert (run.status, run.err) == (4, "rejected [model.version]: version 0 is not supported\n")


@pytest.mark.parametrize(
    "error", [ConnectError("cannot connect: refused"), NotFoundError("no queue took it")]
)
def test_messaging_errors_exit_5(
    gofer: Callable[..., Run], agent: FakeAgent, error: Exception
) -> None:
    agent.outcome = error
    run = gofer(*BASE)
    assert run.status == 5
    assert run.err.startswith("messaging error (amqp://localhost:5672): ")


def test_an_interrupt_exits_130_naming_the_request(
    gofer: Callable[..., Run], agent: FakeAgent
) -> None:
    agent.outcome = KeyboardInterrupt()
    run = gofer(*BASE)
    assert run.status == 130
    assert SN in run.err


def test_a_local_bug_is_not_dressed_as_a_remote_error(
    gofer: Callable[..., Run], agent: FakeAgent
) -> None:
    agent.outcome = TypeError("a bug in the caller")
    with pytest.raises(TypeError, match="a bug in the caller"):
        gofer(*BASE)


def test_passwords_and_secrets_are_never_printed(
    gofer: Callable[..., Run], agent: FakeAgent
) -> None:
    url = "amqp://gofer:brokerpw@localhost"
    agent.outcome = ConnectError(f"cannot connect to {url} as gofer/brokerpw")
    run = gofer(*BASE, "-u", url, "--user", "jim", "--password", "pampw", "--secret", "s3cr3t")
    assert run.status == 5
    assert "brokerpw" not in run.err
    assert "gofer:***@localhost:5672" in run.err
    for outcome in (
        RequestRejectedError(SN, "security.authentication", "pampw refused"),
        RemoteError("zoo", "Oops", ["s3cr3t leaked"], {}, "trace with pampw"),
        RequestTimeoutError(SN, 1),
    ):
        agent.outcome = outcome
        run = gofer(
            *BASE, "-v", "-u", url, "--user", "jim", "--password", "pampw", "--secret", "s3cr3t"
        )
        for secret in ("brokerpw", "pampw", "s3cr3t"):
            assert secret not in run.out + run.err


def test_a_bad_url_is_shown_without_its_password(gofer: Callable[..., Run]) -> None:
    run = gofer(*BASE, "-u", "http://gofer:brokerpw@localhost")
    assert run.status == 2
    assert "brokerpw" not in run.err


# -- progress ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "line"),
    [
        ({"total": 3, "completed": 1, "details": "wag 1"}, "[1/3] wag 1"),
        ({"total": 3, "completed": 0, "details": None}, "[0/3]"),
        ({"total": None, "completed": 2, "details": ""}, "[2]"),
        ({"details": {"step": "copy"}}, '{"step": "copy"}'),
        ({"details": "two\nlines"}, "two lines"),
        ({}, "..."),
    ],
)
def test_progress_line_format(report: dict[str, Any], line: str) -> None:
    assert rmi.Progress.format(report) == line


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    stream = io.StringIO()
    progress = rmi.Progress(stream, tty=True)
    progress({"total": 2, "completed": 1, "details": "one"})
    progress({"total": 2, "completed": 2, "details": "two"})
    progress.finish()
    progress.finish()  # only one line to end
    assert stream.getvalue() == "\r\x1b[K[1/2] one\r\x1b[K[2/2] two\n"


def test_progress_elsewhere_writes_a_line_each() -> None:
    stream = io.StringIO()
    progress = rmi.Progress(stream, tty=False)
    progress({"total": 2, "completed": 1, "details": "one"})
    progress({"total": 2, "completed": 2, "details": "two"})
    progress.finish()
    assert stream.getvalue() == "[1/2] one\n[2/2] two\n"


def test_progress_goes_to_stderr_and_the_result_to_stdout(
    gofer: Callable[..., Run], agent: FakeAgent
) -> None:
    agent.reports = [
        {"sn": SN, "data": None, "total": 3, "completed": n, "details": f"wag {n}"}
        for n in (1, 2, 3)
    ]
    agent.outcome = "wagged"
    run = gofer("rmi", "-a", "demo", "-t", "Dog.wag", "3")
    assert (run.status, run.out) == (0, "wagged\n")
    assert run.err == "[1/3] wag 1\n[2/3] wag 2\n[3/3] wag 3\n"


def test_the_help_documents_the_exit_codes(gofer: Callable[..., Run]) -> None:
    run = gofer("rmi", "--help")
    assert run.status == 0
    for code in ("0", "1", "2", "3", "4", "5"):
        assert f"\n  {code}    " in run.out


# -- several agents -------------------------------------------------------------------


class FakeFleet:
    """Stands for gofer.proxy.Fleet: records how it was made, gives set outcomes."""

    made: ClassVar[list[FakeFleet]] = []

    def __init__(self, url: str, agents: list[str], **options: Any) -> None:
        self.url, self.agents, self.options = url, agents, options
        FakeFleet.made.append(self)

    def call(self, classname: str, method: str, *args: Any, cntr: Any = None, **kws: Any) -> Any:
        self.target = (classname, method, args, kws, cntr)
        outcomes = {
            "web1": rmi.Outcome("web1", "succeeded", result={"installed": "zsh"}, sn="1"),
            "web2": rmi.Outcome("web2", "timeout", error=TimeoutError("no answer"), sn="2"),
        }
        return [outcomes.get(a, rmi.Outcome(a, "succeeded", result="ok")) for a in self.agents]


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> type[FakeFleet]:
    FakeFleet.made = []
    monkeypatch.setattr(rmi, "Fleet", FakeFleet)
    return FakeFleet


def test_several_agents_are_called_together(
    gofer: Callable[..., Run], fleet: type[FakeFleet], tmp_path: Path
) -> None:
    listed = tmp_path / "agents.txt"
    listed.write_text("# the web tier\nweb2\n\nweb3  # new\nweb1\n")

    run = gofer(
        "rmi", "-a", "web1", "--agents-file", str(listed), "--batch", "2",
        "-t", "Package.install", "zsh",
    )  # fmt: skip

    made = fleet.made[0]
    assert made.agents == ["web1", "web2", "web3"]  # each once, in order
    assert made.options["batch"] == 2
    assert made.target == ("Package", "install", ("zsh",), {}, None)
    assert run.out.splitlines() == [
        'web1 succeeded {"installed": "zsh"}',
        "web2 timeout TimeoutError: no answer",
        "web3 succeeded ok",
    ]
    assert run.status == rmi.EXIT_SOME_FAILED
    assert "3 agents: 2 succeeded, 1 not" in run.err


def test_json_gives_a_line_per_agent(gofer: Callable[..., Run], fleet: type[FakeFleet]) -> None:
    run = gofer("rmi", "-a", "web1", "-a", "web3", "--json", "-t", "Package.install", "zsh")

    lines = [json.loads(line) for line in run.out.splitlines()]
    assert [(o["agent"], o["status"]) for o in lines] == [
        ("web1", "succeeded"),
        ("web3", "succeeded"),
    ]
    assert lines[0]["result"] == {"installed": "zsh"}
    assert run.status == rmi.EXIT_OK


def test_json_for_a_single_call(gofer: Callable[..., Run], agent: FakeAgent) -> None:
    run = gofer("rmi", "-a", "demo", "--json", "-t", "Dog.bark", "hi")
    line = json.loads(run.out)
    assert (line["agent"], line["status"], line["result"]) == ("demo", "succeeded", "woof")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-t", "Dog.bark"], "no agent"),
        (["-a", "a", "-a", "b", "-w", "0", "-t", "Dog.bark"], "no -r, no -w 0"),
        (["-a", "a", "--batch", "0", "-t", "Dog.bark"], "at least 1"),
        (["--agents-file", "/nonexistent/agents", "-t", "Dog.bark"], "cannot read"),
    ],
)
def test_bad_fan_out_arguments_are_usage_errors(
    gofer: Callable[..., Run], fleet: type[FakeFleet], argv: list[str], message: str
) -> None:
    run = gofer("rmi", *argv)
    assert run.status == rmi.EXIT_USAGE
    assert message in run.err


def test_the_live_summary_is_rewritten_in_place_on_a_terminal() -> None:
    stream = io.StringIO()
    summary = rmi.Summary(stream, 3, tty=True)
    summary.add(rmi.Outcome("a", "succeeded"))
    summary.add(rmi.Outcome("b", "rejected"))
    summary.finish()
    assert stream.getvalue().endswith("\r\x1b[Kdone 2/3, failed 1, pending 1\n")
