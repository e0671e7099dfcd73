"""The RPMs of gofer.spec: which packages, exactly which files, and goferd answering from them.

The payloads are checked against exact lists: the fixed files of goferd and
the tools are spelled out here; the library's and the adapters' are derived
from the source tarball (every directory, module and its two .pyc files), so
a module added to gofer/ needs no change here, while a stray, missing or
misplaced file fails.
"""

from __future__ import annotations

import configparser
import re
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from gofer.agent.management import ManagementClient, ManagementError
from gofer.messaging.connection import Connection
from gofer.proxy import Agent
from tests.packaging.conftest import REPO, Build, Python, installed_env, run

# The project's version, read as plainly as the spec file's %{version} is set from it.
_VERSION_LINE = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
assert _VERSION_LINE is not None
VERSION = _VERSION_LINE.group(1)
ADAPTERS = "gofer/messaging/adapter"
#: Optional adapters: packaged when their directory is in the source.
OPTIONAL_ADAPTERS = ("proton", "qpid")

GOFER = {
    "/etc/gofer",
    "/etc/gofer/agent.conf",
    "/etc/gofer/conf.d",
    "/etc/gofer/conf.d/README",
    "/etc/gofer/plugins",
    "/etc/gofer/plugins/demo.conf",
    "/etc/sysconfig/goferd",
    "/usr/bin/goferd",
    "/usr/lib/gofer",
    "/usr/lib/gofer/plugins",
    "/usr/lib/systemd/system/goferd.service",
    "/usr/share/doc/gofer",
    "/usr/share/doc/gofer/README.md",
    "/usr/share/gofer",
    "/usr/share/gofer/plugins",
    "/usr/share/licenses/gofer",
    "/usr/share/licenses/gofer/LICENSE",
    "/usr/share/gofer/plugins/__pycache__",
    "/usr/share/gofer/plugins/__pycache__/demo.{tag}.opt-1.pyc",
    "/usr/share/gofer/plugins/__pycache__/demo.{tag}.pyc",
    "/usr/share/gofer/plugins/demo.py",
    "/usr/share/man/man1/goferd.1",
    "/usr/share/bash-completion/completions/goferd",
    "/var/lib/gofer",
}
TOOLS = {
    "/usr/bin/gofer",
    "/usr/share/man/man1/gofer.1",
    "/usr/share/bash-completion/completions/gofer",
}
#: gofer-gateway's fixed files; its Python package (gofer/gateway) is added from the source.
GATEWAY = {
    "/etc/gofer",
    "/etc/gofer/gateway.conf",
    "/usr/bin/gofer-gateway",
    "/usr/lib/systemd/system/gofer-gateway.service",
}
#: The gateway's package, in gofer-gateway rather than the library (it needs aiohttp).
GATEWAY_PACKAGE = "gofer/gateway"


def payload(rpm: Path) -> set[str]:
    """The paths an RPM installs; man pages without the compression suffix.

    Fedora's rpmbuild gzips man pages; Debian's brp-compress fails under dash
    and leaves them as they are. Either is right.
    """
    paths = run("rpm", "-qpl", rpm).split("\n")
    return {
        path.removesuffix(".gz") if path.startswith("/usr/share/man/") else path
        for path in paths
        if path
    }


def source_members(build: Build) -> list[PurePosixPath]:
    """The tarball's paths below its top directory (``gofer/__init__.py``, ...)."""
    with tarfile.open(build.tarball) as tar:
        return [PurePosixPath(*PurePosixPath(name).parts[1:]) for name in tar.getnames()[1:]]


def installed_as(members: list[PurePosixPath], top: str, python: Python) -> set[str]:
    """What the source directory ``top`` becomes in site-packages: dirs, files, .pyc files."""
    found = set()
    below = [m for m in members if m == PurePosixPath(top) or PurePosixPath(top) in m.parents]
    for member in below:
        found.add(f"{python.sitelib}/{member}")
        if member.suffix == ".py":
            cache = f"{python.sitelib}/{member.parent}/__pycache__"
            found.add(cache)
            found.add(f"{cache}/{member.stem}.{python.cache_tag}.pyc")
            found.add(f"{cache}/{member.stem}.{python.cache_tag}.opt-1.pyc")
    return found


#: Adapters shipped inside python3-gofer: no driver to depend on, and
#: gofer.testing (in the library too) needs the in-memory one.
CORE_ADAPTERS = {"memory"}


def adapters_in(members: list[PurePosixPath]) -> list[str]:
    """The adapters packaged on their own: packages (with an __init__.py) in
    gofer/messaging/adapter, but for those the library carries."""
    return sorted(
        member.parent.name
        for member in members
        if member.name == "__init__.py"
        and str(member.parent.parent) == ADAPTERS
        and member.parent.name not in CORE_ADAPTERS
    )


def test_spec_version_is_pyprojects() -> None:
    spec = (REPO / "gofer.spec").read_text()
    assert f"\n%global upstream_version {VERSION}\n" in spec, (
        f"set '%global upstream_version {VERSION}' in gofer.spec (pyproject.toml's version), "
        "and add a %changelog entry"
    )


def test_tarball_spec_has_the_build_settings(build: Build) -> None:
    members = source_members(build)
    with tarfile.open(build.tarball) as tar:
        spec_file = tar.extractfile(f"gofer-{VERSION}/gofer.spec")
        assert spec_file is not None
        spec = spec_file.read().decode()
    assert f"\n%global upstream_version {VERSION}\n" in spec
    present = adapters_in(members)
    for adapter in OPTIONAL_ADAPTERS:
        setting = "without" if adapter in present else "with"
        assert f"\n%bcond_{setting} {adapter}\n" in spec


def test_source_holds_no_build_litter(build: Build) -> None:
    names = [str(member) for member in source_members(build)]
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".rpm"))]
    assert not [n for n in names if n.startswith((".venv/", "build/", "gofer.egg-info/"))]


def test_packages_are_the_expected_ones(build: Build) -> None:
    adapters = adapters_in(source_members(build))
    assert "amqp" in adapters
    expected = {"gofer", "gofer-tools", "gofer-gateway", "python3-gofer"}
    expected |= {f"python3-gofer-{a}" for a in adapters}
    assert set(build.rpms) == expected
    versions = {run("rpm", "-qp", "--qf", "%{VERSION}", rpm) for rpm in build.rpms.values()}
    assert versions == {VERSION.replace(".dev", "~dev")}


def test_gofer_payload(build: Build, python: Python) -> None:
    assert payload(build.rpms["gofer"]) == {path.format(tag=python.cache_tag) for path in GOFER}


def test_tools_payload(build: Build) -> None:
    assert payload(build.rpms["gofer-tools"]) == TOOLS


def test_gateway_payload(build: Build, python: Python) -> None:
    expected = GATEWAY | installed_as(source_members(build), GATEWAY_PACKAGE, python)
    assert payload(build.rpms["gofer-gateway"]) == expected


def test_library_payload(build: Build, python: Python) -> None:
    members = source_members(build)
    expected = installed_as(members, "gofer", python)
    expected -= installed_as(members, GATEWAY_PACKAGE, python)
    # Built adapters are packages of their own; the optional ones not built
    # (no __init__.py yet) are left out altogether.
    for adapter in {*adapters_in(members), *OPTIONAL_ADAPTERS}:
        expected -= installed_as(members, f"{ADAPTERS}/{adapter}", python)
    info = f"{python.sitelib}/gofer-{VERSION}.dist-info"
    expected |= {info} | {f"{info}/{name}" for name in ("INSTALLER", "METADATA")}
    expected |= {f"{info}/{name}" for name in ("entry_points.txt", "top_level.txt")}
    assert payload(build.rpms["python3-gofer"]) == expected


def test_adapter_payloads(build: Build, python: Python) -> None:
    members = source_members(build)
    for adapter in adapters_in(members):
        expected = installed_as(members, f"{ADAPTERS}/{adapter}", python)
        assert payload(build.rpms[f"python3-gofer-{adapter}"]) == expected, adapter


def file_attributes(rpm: Path) -> dict[str, tuple[str, str, str]]:
    """Path -> (permissions, owner, file flags such as ``cn`` for %config(noreplace))."""
    query = "[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEUSERNAME}\t%{FILEFLAGS:fflags}\n]"
    rows = run("rpm", "-qp", "--qf", query, rpm).splitlines()
    return {path: (mode, user, flags) for path, mode, user, flags in (r.split("\t") for r in rows)}


def test_gofer_files_attributes(build: Build) -> None:
    files = file_attributes(build.rpms["gofer"])
    for path, (mode, user, flags) in files.items():
        assert user == "root", path
        if path.startswith("/etc/") and not mode.startswith("d"):
            assert flags == "cn", f"{path} is not %config(noreplace)"
        elif not path.startswith("/usr/share/doc/"):
            assert "c" not in flags, path
    assert files["/var/lib/gofer"][0] == "drwx------"
    assert files["/usr/bin/goferd"][0] == "-rwxr-xr-x"
    assert files["/usr/share/doc/gofer/README.md"][2] == "d"


def test_gateway_files_attributes(build: Build) -> None:
    files = file_attributes(build.rpms["gofer-gateway"])
    assert {user for _, user, _ in files.values()} == {"root"}
    # It holds the callers' tokens: root's alone, and kept when edited.
    assert files["/etc/gofer/gateway.conf"] == ("-rw-------", "root", "cn")
    assert files["/usr/bin/gofer-gateway"][0] == "-rwxr-xr-x"


def test_requirements(build: Build) -> None:
    def requires(package: str) -> set[str]:
        text = run("rpm", "-qp", "--requires", build.rpms[package])
        return {line for line in text.splitlines() if not line.startswith("rpmlib(")}

    release = run("rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE}", build.rpms["gofer"])
    library = f"python3-gofer = {release}"
    any_adapter = "(python3-gofer-amqp or python3-gofer-proton or python3-gofer-qpid)"
    assert {library, any_adapter} <= requires("gofer")
    assert {library, any_adapter} <= requires("gofer-tools")
    assert {library, any_adapter, "python3-aiohttp >= 3.8"} <= requires("gofer-gateway")
    assert not [r for r in requires("python3-gofer") if "aiohttp" in r]
    assert "python3 >= 3.9" in requires("python3-gofer")
    assert not [r for r in requires("python3-gofer") if "amqp" in r or "proton" in r]
    assert {library, "python3-amqp >= 5.2"} <= requires("python3-gofer-amqp")
    if "python3-gofer-proton" in build.rpms:
        assert {library, "python3-qpid-proton >= 0.39"} <= requires("python3-gofer-proton")
    if "python3-gofer-qpid" in build.rpms:  # its 0-10 engine is gofer's own: no driver
        assert library in requires("python3-gofer-qpid")


def test_scriptlets_never_wait_for_goferd(build: Build) -> None:
    scripts = run("rpm", "-qp", "--scripts", build.rpms["gofer"])
    assert "preset goferd.service" in scripts  # %systemd_post: enabled by the presets
    assert "--no-block disable --now goferd.service" in scripts  # %preun, on removal
    assert "--no-block try-restart goferd.service" in scripts  # %posttrans, on upgrade
    assert "posttrans scriptlet" in scripts
    for line in scripts.splitlines():
        if "systemctl" in line and ("restart" in line or "--now" in line):
            assert "--no-block" in line, line


def test_rebuild_is_cached(build: Build) -> None:
    result = subprocess.run(
        [str(REPO / "scripts/rpm"), str(build.tarball.parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "up to date" in result.stderr
    assert build.tarball.exists()


# -- the installed layout -------------------------------------------------------------


def test_installed_layout_is_self_contained(
    installed: Path, python: Python, runtime_deps: Path
) -> None:
    """The installed commands import gofer from the root, and its metadata is there."""
    env = installed_env(installed, python, runtime_deps)
    probe = (
        "import gofer, importlib.metadata as m; "
        "print(gofer.__file__); print(m.version('gofer')); "
        "print(sorted(e.name for e in m.entry_points(group='gofer.adapters'))); "
        "print(sorted(e.name for e in m.entry_points(group='console_scripts') "
        "if e.module.startswith('gofer.')))"
    )
    # Run from the root: from the work tree, "-c" would import the tree's gofer.
    output = run(python.executable, "-s", "-c", probe, env=env, cwd=installed)
    where, version, adapters, scripts = output.split("\n")[:4]
    assert where == f"{installed}{python.sitelib}/gofer/__init__.py"
    assert version == VERSION
    assert "'amqp'" in adapters
    assert scripts == "['gofer', 'gofer-gateway', 'goferd']"
    shebang = (installed / "usr/bin/goferd").read_text().splitlines()[0]
    assert shebang == f"#!{python.executable} -s"
    assert run(installed / "usr/bin/goferd", "--version", env=env).strip() == f"goferd {VERSION}"
    assert run(installed / "usr/bin/gofer", "--version", env=env).strip() == f"gofer {VERSION}"


@pytest.fixture
def installed_goferd(
    installed: Path, python: Python, runtime_deps: Path, url: str
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """goferd from the scratch root, its demo plugin on RabbitMQ with a queue of its own."""
    queue = f"gofer-rpm-{uuid.uuid4()}"
    descriptor = installed / "etc/gofer/plugins/demo.conf"
    demo = configparser.ConfigParser(interpolation=None)
    demo.read(descriptor)
    demo["main"]["enabled"] = "1"  # shipped disabled
    demo["messaging"]["url"] = url
    demo["model"]["queue"] = queue
    with descriptor.open("w") as out:
        demo.write(out)
    log_path = installed / "goferd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [installed / "usr/bin/goferd", "--foreground", "--log", "stderr"],
            stdout=log,
            stderr=log,
            env=installed_env(installed, python, runtime_deps),
            cwd=installed,
        )
    try:
        _wait_ready(process, url, queue, installed, log_path)
        yield process, queue, log_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        connection = Connection(url)
        try:
            connection.delete_queue(queue)
        finally:
            connection.close()


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, queue: str, root: Path, log: Path
) -> None:
    """Until goferd answers on its socket and its plugin's queue exists."""
    connection = Connection(url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"goferd exited {process.returncode}:\n{log.read_text()}")
            try:
                ManagementClient(root / "run/gofer/goferd.sock", timeout=2).call("show")
            except ManagementError:
                pass
            else:
                if connection.queue_exists(queue):
                    return
            time.sleep(0.1)
    finally:
        connection.close()
    pytest.fail(f"goferd not ready within 30 s:\n{log.read_text()}")


@pytest.mark.broker
def test_installed_goferd_answers(
    installed_goferd: tuple[subprocess.Popen[bytes], str, Path],
    installed: Path,
    python: Python,
    runtime_deps: Path,
    url: str,
) -> None:
    """goferd, gofer rmi and gofer mgt as installed by the RPMs, against RabbitMQ."""
    process, queue, log = installed_goferd
    assert Agent(url, queue, wait=30).Admin().hello() == f"Hello, I am gofer agent {VERSION}"

    env = installed_env(installed, python, runtime_deps)
    gofer = installed / "usr/bin/gofer"
    called = run(gofer, "rmi", "-u", url, "-a", queue, "-w", "30", "-t", "Dog.bark", "hi", env=env)
    assert "hi" in called
    status = run(gofer, "mgt", "-s", env=env)
    assert "<plugin> demo" in status

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, log.read_text()
    assert f"root {installed}" in log.read_text()
    assert_usr_untouched(installed)


def assert_usr_untouched(root: Path) -> None:
    """Running wrote nothing below /usr (no .pyc files, say): only the edited descriptor differs."""
    database = ["--root", str(root), "--dbpath", "/var/lib/rpm"]
    verify = subprocess.run(
        ["rpm", "-Va", "--nodeps", *database], capture_output=True, text=True, check=False
    )
    assert verify.stdout.split() == ["S.5....T.", "c", "/etc/gofer/plugins/demo.conf"]
    owned = set(run("rpm", "-qa", "--list", *database).split())
    files = [path for path in (root / "usr").rglob("*") if not path.is_dir()]
    on_disk = {f"/{path.relative_to(root)}" for path in files}
    assert on_disk - owned == set()
