"""Bash completion of gofer and goferd as the RPMs ship it: made from the parsers, run in bash."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools import completion

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("completions")
    completion.write(directory)
    return directory


def complete(files: Path, command: str, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` after ``command``."""
    line = " ".join([command, *words])
    script = (
        f"source {files / command}\n"
        f"COMP_WORDS=({line}) COMP_CWORD={len(words)}\n"
        f'[ -z "{words[-1]}" ] && COMP_WORDS+=("")\n'
        f"_{command}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_subcommands_and_their_options(files: Path) -> None:
    assert complete(files, "gofer", "") == ["rmi", "mgt", "-h", "--help", "--version"]
    assert complete(files, "gofer", "rmi", "--ca") == ["--cacert"]
    assert "--show" in complete(files, "gofer", "mgt", "--")


def test_choices_and_paths(files: Path, tmp_path: Path) -> None:
    targets = ["auto", "journald", "syslog", "stderr", "json"]
    assert complete(files, "goferd", "--log", "") == targets
    (tmp_path / "zoo.conf").write_text("")
    assert complete(files, "gofer", "mgt", "-l", str(tmp_path / "zo")) == [
        str(tmp_path / "zoo.conf")
    ]


def test_every_option_of_the_parsers_is_offered(files: Path) -> None:
    text = (files / "gofer").read_text()
    for option in ("--address", "--target", "--wait", "--reply", "--ttl", "--criteria"):
        assert option in text
