"""Running gofer as the user nobody, from a copy nobody can read (a clone under /root is 0700)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def readable_tree() -> Iterator[Path]:
    """``bin/gofer`` and the ``gofer`` package, copied where anyone can read them; removed after."""
    tree = Path(tempfile.mkdtemp(prefix="gofer-nobody-"))
    try:
        shutil.copytree(
            REPO / "gofer", tree / "gofer", ignore=shutil.ignore_patterns("__pycache__")
        )
        (tree / "bin").mkdir()
        shutil.copy(REPO / "bin/gofer", tree / "bin/gofer")
        for path in [tree, *tree.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield tree
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def python_for_nobody(tree: Path, module: str) -> str | None:
    """A Python nobody can run that imports ``module`` from ``tree``; None when there is none."""
    probe = f"import sys; sys.path.insert(0, {str(tree)!r}); import {module}"
    for candidate in ("/usr/bin/python3", sys.executable):
        try:
            done = subprocess.run(
                [candidate, "-c", probe],
                user="nobody",
                capture_output=True,
                timeout=30,
                cwd="/",
                check=False,
            )
        except OSError:
            continue
        if done.returncode == 0:
            return candidate
    return None
