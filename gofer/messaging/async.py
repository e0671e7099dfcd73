"""The 2.x name of :mod:`gofer.rmi.async_` (the user guide's ``gofer.messaging.async``).

``import gofer.messaging.async`` is a syntax error since Python 3.7, but
``importlib.import_module("gofer.messaging.async")`` finds this module. It
sits above its layer (it re-exports the RMI reply consumer), for old callers only.
"""
# ruff: noqa: N999 - the module's name is the point

from gofer.rmi.async_ import *  # noqa: F403
from gofer.rmi.async_ import __all__  # noqa: F401
