"""The package plugin: which manager runs, the exact command lines, names checked first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from gofer.decorators import FORK, marks
from tests.unit.plugins import load_plugin

package = load_plugin("package")

DPKG = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


class Commands:
    """Stands in for ``execute``: records argv and env, answers with fixed statuses."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Mapping[str, str] | None]] = []
        self.statuses: list[int] = []
        self.output = "ok\n"

    def __call__(self, argv: Sequence[str], env: Mapping[str, str] | None) -> tuple[int, str]:
        self.calls.append((list(argv), env))
        return (self.statuses.pop(0) if self.statuses else 0), self.output

    @property
    def argvs(self) -> list[list[str]]:
        return [argv for argv, _ in self.calls]


def only(*programs: str) -> Any:
    """A ``shutil.which`` that finds just ``programs``."""
    return lambda name: f"/usr/bin/{name}" if name in programs else None


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> Commands:
    recorder = Commands()
    monkeypatch.setattr(package, "execute", recorder)
    return recorder


@pytest.fixture
def dnf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package.shutil, "which", only("dnf", "yum", "apt-get"))


@pytest.fixture
def apt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package.shutil, "which", only("apt-get"))


# choosing the manager


@pytest.mark.parametrize(
    ("installed", "chosen"),
    [
        (("dnf", "yum", "apt-get"), "dnf"),
        (("yum", "apt-get"), "yum"),
        (("apt-get",), "apt-get"),
    ],
)
def test_dnf_before_yum_before_apt_get(
    monkeypatch: pytest.MonkeyPatch, installed: tuple[str, ...], chosen: str
) -> None:
    monkeypatch.setattr(package.shutil, "which", only(*installed))
    assert package.manager().program == chosen


def test_the_manager_is_looked_for_at_each_call(
    monkeypatch: pytest.MonkeyPatch, commands: Commands
) -> None:
    monkeypatch.setattr(package.shutil, "which", only("yum"))
    package.Package().install("zsh")
    monkeypatch.setattr(package.shutil, "which", only("dnf"))
    package.Package().install("zsh")
    assert [argv[0] for argv in commands.argvs] == ["yum", "dnf"]


def test_no_manager_is_a_package_error(monkeypatch: pytest.MonkeyPatch, commands: Commands) -> None:
    monkeypatch.setattr(package.shutil, "which", only())
    with pytest.raises(package.PackageError, match="no package manager"):
        package.Package().install("zsh")
    assert commands.calls == []


# command lines


@pytest.mark.usefixtures("dnf")
def test_dnf_command_lines(commands: Commands) -> None:
    pkg = package.Package()
    assert pkg.install("zsh", "tmux") == {"status": 0, "output": "ok\n"}
    pkg.update("zsh")
    pkg.update()
    pkg.remove("zsh")
    pkg.install("kernel=5.14.0-70.el9", "bash-5.1.8-6.el9_1.x86_64", "perl:5.32")
    assert commands.argvs == [
        ["dnf", "-y", "install", "zsh", "tmux"],
        ["dnf", "-y", "upgrade", "zsh"],
        ["dnf", "-y", "upgrade"],
        ["dnf", "-y", "remove", "zsh"],
        ["dnf", "-y", "install", "kernel-5.14.0-70.el9", "bash-5.1.8-6.el9_1.x86_64", "perl:5.32"],
    ]
    assert all(env == {} for _, env in commands.calls)


def test_yum_command_lines(monkeypatch: pytest.MonkeyPatch, commands: Commands) -> None:
    monkeypatch.setattr(package.shutil, "which", only("yum"))
    pkg = package.Package()
    pkg.install("zsh")
    pkg.update()
    pkg.remove("zsh")
    assert commands.argvs == [
        ["yum", "-y", "install", "zsh"],
        ["yum", "-y", "update"],
        ["yum", "-y", "remove", "zsh"],
    ]


@pytest.mark.usefixtures("apt")
def test_apt_get_command_lines_refresh_first_and_stay_non_interactive(
    commands: Commands,
) -> None:
    pkg = package.Package()
    pkg.install("zsh", "tmux=3.3a-3")
    pkg.update("zsh")
    pkg.update()
    pkg.remove("zsh")
    refresh = ["apt-get", "-q", "update"]
    assert commands.argvs == [
        refresh,
        ["apt-get", "-y", *DPKG, "install", "zsh", "tmux=3.3a-3"],
        refresh,
        ["apt-get", "-y", *DPKG, "install", "--only-upgrade", "zsh"],
        refresh,
        ["apt-get", "-y", *DPKG, "upgrade"],
        ["apt-get", "-y", "remove", "zsh"],
    ]
    assert all(env == {"DEBIAN_FRONTEND": "noninteractive"} for _, env in commands.calls)


@pytest.mark.usefixtures("dnf")
def test_a_list_argument_counts_as_its_names(commands: Commands) -> None:
    package.Package().install(["zsh", "tmux"], "git")
    assert commands.argvs == [["dnf", "-y", "install", "zsh", "tmux", "git"]]


def test_execute_adds_to_the_environment_and_streams_through_shell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOFER_TEST_MARK", "kept")
    status, output = package.execute(
        ["sh", "-c", 'echo "$DEBIAN_FRONTEND $GOFER_TEST_MARK"'],
        {"DEBIAN_FRONTEND": "noninteractive"},
    )
    assert (status, output) == (0, "noninteractive kept\n")


# names


@pytest.mark.parametrize(
    "name",
    [
        "; rm -rf /",
        "$(reboot)",
        "`reboot`",
        "--help",
        "-y",
        "-",
        "zsh; reboot",
        "zsh && reboot",
        "zsh\n",
        "zsh reboot",
        "zsh*",
        "../zsh",
        "/etc/passwd",
        "",
        "=1.0",
        "zsh=",
        "zsh=-1",
        "zsh=1=2",
        "zsh>=1.0",
        "z" * 256,
        "zsh=" + "1" * 256,
        "\uff5a\uff53\uff48",  # full-width letters
    ],
)
@pytest.mark.usefixtures("dnf")
def test_hostile_names_are_refused_before_anything_runs(commands: Commands, name: str) -> None:
    for method in (package.Package().install, package.Package().update, package.Package().remove):
        with pytest.raises(ValueError, match="not a package name"):
            method("zsh", name)
    assert commands.calls == []


@pytest.mark.parametrize("name", [None, 3, {"name": "zsh"}, ["zsh", None]])
@pytest.mark.usefixtures("dnf")
def test_names_are_strings(commands: Commands, name: Any) -> None:
    with pytest.raises(TypeError):
        package.Package().install(name)
    assert commands.calls == []


@pytest.mark.usefixtures("dnf")
def test_install_and_remove_want_names(commands: Commands) -> None:
    with pytest.raises(ValueError, match="install what"):
        package.Package().install()
    with pytest.raises(ValueError, match="remove what"):
        package.Package().remove()
    assert commands.calls == []


# failures and the model


@pytest.mark.usefixtures("apt")
def test_a_failure_is_a_package_error_with_status_and_tail(commands: Commands) -> None:
    commands.statuses = [0, 100]
    commands.output = "".join(f"line {n}\n" for n in range(40)) + "E: Unable to locate package\n"
    with pytest.raises(package.PackageError, match="failed with status 100") as caught:
        package.Package().install("nosuch")
    error = caught.value
    assert error.status == 100
    assert error.output.endswith("E: Unable to locate package")
    assert "line 0\n" not in error.output
    assert "E: Unable to locate package" in str(error)


@pytest.mark.usefixtures("apt")
def test_a_failed_refresh_stops_the_install(commands: Commands) -> None:
    commands.statuses = [1]
    with pytest.raises(package.PackageError, match="apt-get -q update failed"):
        package.Package().install("zsh")
    assert len(commands.calls) == 1


def test_every_method_runs_in_a_child_process() -> None:
    for name in ("install", "update", "remove"):
        found = marks(getattr(package.Package, name))
        assert found is not None
        assert found.remote
        assert found.model == FORK
