"""Unit tests of the shipped plugins (``plugins/*.py``), loaded by path as goferd loads them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def load_plugin(name: str) -> ModuleType:
    """Import ``plugins/<name>.py`` as module ``gofer_plugin_<name>`` (once per test run)."""
    module_name = f"gofer_plugin_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, PLUGINS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
