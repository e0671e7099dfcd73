"""The documented path of the call context: ``from gofer.agent.rmi import Context``."""

from gofer.rmi.context import Context, NoContextError, Progress

__all__ = ["Context", "NoContextError", "Progress"]
