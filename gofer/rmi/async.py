"""The existing gofer's name of :mod:`gofer.rmi.async_`, found by ``importlib.import_module``.

``async`` is a keyword since Python 3.7, so ``import gofer.rmi.async`` is a
syntax error, but code that imports the module by its name still finds it.
"""
# ruff: noqa: N999 - the module's name is the point

from gofer.rmi.async_ import *  # noqa: F403
from gofer.rmi.async_ import __all__  # noqa: F401
