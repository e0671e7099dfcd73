"""goferd under the oldest supported Python answers a caller under the newest.

``scripts/test`` (run whole) makes a venv for each other Python it finds
(``.venv-3.N``) and names them all, the default's too, in
``$GOFER_TEST_PYTHONS`` (``3.9=/path/.venv-3.9 ...``). A run narrowed to
some tests makes none and leaves it unset: the test is skipped then.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import brokers
from tests.e2e.conftest import REPO, Goferd

OLDEST, NEWEST = "3.9", "3.13"


def venvs() -> dict[str, Path]:
    found = {}
    for entry in os.environ.get("GOFER_TEST_PYTHONS", "").split():
        version, _, path = entry.partition("=")
        found[version] = Path(path)
    return found


@pytest.fixture
def pythons() -> tuple[Path, Path]:
    """The interpreters of the oldest and the newest supported Python's venvs."""
    found = venvs()
    if OLDEST not in found or NEWEST not in found:
        message = f"no venvs for Python {OLDEST} and {NEWEST} (scripts/test makes them)"
        if brokers.required() and "GOFER_TEST_PYTHONS" in os.environ:
            pytest.fail(message)
        pytest.skip(message)
    return found[OLDEST] / "bin/python", found[NEWEST] / "bin/python"


def gofer_rmi(python: Path, url: str, queue: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, str(REPO / "bin/gofer"), "rmi", "-u", url, "-a", queue, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_goferd_on_the_oldest_python_answers_a_caller_on_the_newest(
    make_goferd: Callable[..., Any], pythons: tuple[Path, Path]
) -> None:
    oldest, newest = pythons
    goferd: Goferd = make_goferd(start=False)
    goferd.python = str(oldest)
    goferd.start()
    served = gofer_rmi(newest, goferd.url, goferd.queue, "-t", "farm.whoami")
    assert served.returncode == 0, served.stderr
    pid = int(served.stdout)
    assert f"python{OLDEST}" in os.readlink(f"/proc/{pid}/exe")
    moo = gofer_rmi(newest, goferd.url, goferd.queue, "-t", "Cow.moo", "2")
    assert (moo.returncode, moo.stdout.strip()) == (0, "moo moo from daisy"), moo.stderr
    kicked = gofer_rmi(newest, goferd.url, goferd.queue, "-t", "Cow.kick")
    assert kicked.returncode == 1
    assert "ValueError" in kicked.stderr
    assert "daisy kicks" in kicked.stderr
