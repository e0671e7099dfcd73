"""goferd's management endpoint refuses an unprivileged local user (``gofer mgt`` run as nobody).

Neither the venv nor, when it was cloned under /root (mode 0700), this
checkout is nobody's to read: nobody runs a copy of ``bin/gofer`` and the
``gofer`` package made in a directory anyone can read, with a Python anyone
can run (``gofer mgt`` needs nothing beyond the standard library).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.agent.management import ManagementClient, ManagementError
from tests.faults.conftest import FaultGoferd
from tests.nobody import python_for_nobody, readable_tree


@pytest.fixture(scope="module")
def nobody_tree() -> Iterator[Path]:
    """``bin/gofer`` and the ``gofer`` package, copied where nobody can read them."""
    with readable_tree() as tree:
        yield tree


@pytest.fixture(scope="module")
def nobody_python(nobody_tree: Path) -> str:
    """A Python that nobody can run and that imports ``gofer mgt`` from ``nobody_tree``."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run gofer mgt as nobody")
    found = python_for_nobody(nobody_tree, "gofer.cli.main")
    if found is None:
        pytest.fail("no Python that nobody can run imports gofer from a copy nobody can read")
    return found


@pytest.fixture
def public_root() -> Iterator[Path]:
    """A goferd root that nobody can walk through (pytest's tmp_path is 0700).

    Request it before ``fault_goferd``, so that goferd stops before its root goes.
    """
    root = Path(tempfile.mkdtemp(prefix="gofer-faults-mgt-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def gofer_mgt(
    python: str, tree: Path, root: Path, *args: str, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, str(tree / "bin/gofer"), "mgt", *args],
        user=user,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree), "GOFER_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        check=False,
    )


def test_nobody_is_refused_and_root_is_served(
    nobody_python: str, nobody_tree: Path, public_root: Path, fault_goferd
) -> None:
    goferd: FaultGoferd = fault_goferd(root=public_root)
    assert goferd.socket.exists()

    refused = gofer_mgt(nobody_python, nobody_tree, public_root, "-s", user="nobody")
    assert refused.returncode == 1, refused
    assert "permission denied" in refused.stderr, refused.stderr
    assert "run as root" in refused.stderr, refused.stderr
    assert refused.stdout == ""

    served = gofer_mgt(nobody_python, nobody_tree, public_root, "-s")
    assert served.returncode == 0, served.stderr
    assert "<plugin> faults" in served.stdout


def test_a_socket_left_open_still_refuses_nobody(
    nobody_python: str, nobody_tree: Path, public_root: Path, fault_goferd
) -> None:
    """Should the socket's mode be loosened by mistake, goferd checks the peer's uid itself."""
    goferd: FaultGoferd = fault_goferd(root=public_root)
    goferd.socket.chmod(0o666)

    refused = gofer_mgt(nobody_python, nobody_tree, public_root, "-s", user="nobody")
    assert refused.returncode == 1, refused
    assert "uid 65534 may not manage goferd" in refused.stderr, refused.stderr
    assert refused.stdout == ""
    assert "uid 65534" in goferd.log()  # and the refusal is logged
    assert goferd.mgt("show")["plugins"][0]["name"] == "faults"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def goferd_with_tcp_port(fault_goferd) -> tuple[FaultGoferd, ManagementClient]:
    """A started goferd with the old TCP port open on 127.0.0.1, and a client of that port."""
    goferd: FaultGoferd = fault_goferd(start=False)
    port = free_port()
    conf = goferd.root / "etc/gofer/agent.conf"
    conf.write_text(
        conf.read_text()
        .replace("enabled=0", "enabled=1")
        .replace("host=localhost", "host=127.0.0.1")
        .replace("port=5650", f"port={port}")
    )
    goferd.start()
    return goferd, ManagementClient(tcp=("127.0.0.1", port), timeout=30)


def test_tcp_port_loads_only_descriptors_of_the_descriptor_directory(
    fault_goferd, tmp_path: Path
) -> None:
    """Anyone local reaches the TCP port: a descriptor of their own must not load as root."""
    goferd, tcp = goferd_with_tcp_port(fault_goferd)
    installed = goferd.root / "etc/gofer/plugins/faults.conf"
    own = tmp_path / "faults.conf"  # the name picks the installed plugin
    own.write_text(installed.read_text())
    tcp.call("unload", name="faults")
    with pytest.raises(ManagementError, match="only descriptors in"):
        tcp.call("load", path=str(own))
    assert "refused" in goferd.log()
    # A symbolic link into the directory is judged by where it leads.
    link = goferd.root / "etc/gofer/plugins/link.conf"
    link.symlink_to(own)
    with pytest.raises(ManagementError, match="only descriptors in"):
        tcp.call("load", path=str(link))
    link.unlink()
    assert tcp.call("load", path=str(installed)) == {"loaded": "faults"}
    # The management socket (root only) still loads from anywhere.
    goferd.mgt("unload", name="faults")
    assert goferd.mgt("load", path=str(own)) == {"loaded": "faults"}


def test_tcp_port_reloads_and_loads_only_what_root_enabled_in_the_directory(
    fault_goferd, tmp_path: Path
) -> None:
    """A plugin root loaded from elsewhere, or a descriptor root disabled, stays root's."""
    goferd, tcp = goferd_with_tcp_port(fault_goferd)
    installed = goferd.root / "etc/gofer/plugins/faults.conf"
    # Root loads the plugin from a place a user may write to, over the socket...
    elsewhere = tmp_path / "faults.conf"
    elsewhere.write_text(installed.read_text())
    goferd.mgt("unload", name="faults")
    assert goferd.mgt("load", path=str(elsewhere)) == {"loaded": "faults"}
    # ...and a reload over TCP would read that file again, as root.
    for args in ({"name": "faults"}, {"path": str(elsewhere)}):
        with pytest.raises(ManagementError, match="only descriptors in"):
            tcp.call("reload", **args)
    goferd.mgt("unload", name="faults")

    installed.write_text(installed.read_text().replace("enabled=1", "enabled=0"))
    with pytest.raises(ManagementError, match="says enabled=0"):
        tcp.call("load", path=str(installed))
    assert goferd.mgt("show")["plugins"] == []
    installed.write_text(installed.read_text().replace("enabled=0", "enabled=1"))
    assert tcp.call("load", path=str(installed)) == {"loaded": "faults"}
    assert tcp.call("reload", name="faults") == {"loaded": "faults"}
