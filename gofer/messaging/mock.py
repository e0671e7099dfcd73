"""The user guide's ``gofer.messaging.mock``: mock agents for callers' tests (see gofer.rmi.mock).

It patches ``gofer.proxy.Agent``, a layer above messaging: this module is
only the old import path, kept for callers' tests.
"""

from gofer.rmi.mock import *  # noqa: F403
from gofer.rmi.mock import __all__  # noqa: F401
