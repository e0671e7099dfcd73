"""The RPMs, built once per session by scripts/rpm, and a scratch root they are installed in."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def ensure_command(command: str, package: str) -> str:
    """The path of ``command``, installing the Debian package that has it when it is missing.

    A fresh CI machine may lack it; apt-get runs as root there (sudo -n otherwise).
    """
    found = shutil.which(command)
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", package]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which(command)
    assert found, f"{package} installed, but {command} is still not on PATH"
    return found


def run(*command: str | Path, **kwargs: object) -> str:
    """Run a command; its standard output, or a test failure showing both outputs."""
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False, **kwargs
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )
    return result.stdout


@dataclasses.dataclass(frozen=True)
class Build:
    """What scripts/rpm made: the source tarball, the SRPM and the RPMs by package name."""

    tarball: Path
    srpm: Path
    rpms: dict[str, Path]


@dataclasses.dataclass(frozen=True)
class Python:
    """The interpreter the RPMs are built for: it compiles their .pyc files and runs goferd."""

    executable: str
    version: str  # "3.11"
    cache_tag: str  # "cpython-311"

    @property
    def sitelib(self) -> str:
        return f"/usr/lib/python{self.version}/site-packages"


@pytest.fixture(scope="session")
def build() -> Build:
    """The RPMs of the work tree (scripts/rpm rebuilds only when the source changed)."""
    ensure_command("rpmbuild", "rpm")
    files = [Path(line) for line in run(REPO / "scripts/rpm", timeout=600).split()]
    rpms = {}
    for path in files:
        if path.name.endswith(".noarch.rpm"):
            rpms[run("rpm", "-qp", "--qf", "%{NAME}", path)] = path
    (tarball,) = [path for path in files if path.name.endswith(".tar.gz")]
    (srpm,) = [path for path in files if path.name.endswith(".src.rpm")]
    return Build(tarball, srpm, rpms)


@pytest.fixture(scope="session")
def python(build: Build) -> Python:
    """The spec's %{__python3} (``/usr/bin/python3`` where rpm has no python macros)."""
    executable = run("rpm", "--eval", "%{?__python3}%{!?__python3:/usr/bin/python3}").strip()
    probe = "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.cache_tag)"
    version, cache_tag = run(executable, "-c", probe).split()
    return Python(executable, version, cache_tag)


@pytest.fixture(scope="session")
def installed(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch root with every RPM installed (no dependencies, no scriptlets: it is no system)."""
    root = tmp_path_factory.mktemp("rpm-root")
    database = ("--root", root, "--dbpath", "/var/lib/rpm")
    run("rpm", *database, "--initdb")
    run("rpm", "-i", *database, "--nodeps", "--noscripts", *build.rpms.values())
    return root


@pytest.fixture(scope="session")
def runtime_deps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with gofer's Python dependencies only (py-amqp and vine), not gofer itself.

    Stands in for the python3-amqp RPM: with it and the scratch root's
    site-packages on PYTHONPATH, the installed commands import nothing from
    the source tree or the test virtualenv's gofer.
    """
    directory = tmp_path_factory.mktemp("deps")
    for name in ("amqp", "vine"):
        module = __import__(name)
        (directory / name).symlink_to(Path(module.__file__).parent)
    return directory


def installed_env(root: Path, python: Python, deps: Path) -> dict[str, str]:
    """The environment in which the scratch root's commands run as if installed at /."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.pop("NOTIFY_SOCKET", None)
    env["PYTHONPATH"] = f"{root}{python.sitelib}{os.pathsep}{deps}"
    env["GOFER_ROOT"] = str(root)
    return env
