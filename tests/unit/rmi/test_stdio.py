"""fds 0, 1 and 2 kept open, so that goferd's files and pipes never land on them."""

from __future__ import annotations

import subprocess
import sys


def run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_closed_stdout_is_filled_before_any_file_is_opened() -> None:
    printed = run(
        "import os, sys\n"
        "from gofer.rmi import stdio\n"
        "os.close(1)\n"
        "stdio.fill()\n"
        "fd = os.open(os.devnull, os.O_RDONLY)\n"
        "sys.stderr.write(f'{fd} {os.readlink(\"/proc/self/fd/1\")}')\n"
    )
    fd, stdout = printed.split()
    assert int(fd) > 2
    assert stdout == "/dev/null"


def test_goferd_fills_them_first_thing() -> None:
    """Else its pid file would be fd 1, and every print would go into it."""
    printed = run(
        "import os, sys\n"
        "from unittest import mock\n"
        "from gofer.cli import goferd\n"
        "os.close(1)\n"
        "with mock.patch.object(goferd, 'parser', side_effect=SystemExit(0)):\n"
        "    try:\n"
        "        goferd.main([])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "sys.stderr.write(os.readlink('/proc/self/fd/1'))\n"
    )
    assert printed == "/dev/null"
