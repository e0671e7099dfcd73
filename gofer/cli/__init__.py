"""The ``gofer`` command line: ``gofer rmi`` and ``gofer mgt``."""
