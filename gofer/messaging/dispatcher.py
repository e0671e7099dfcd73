"""The old home of the dispatch errors callers catch (``NotAuthorized``, ...): gofer.errors."""

from gofer.errors import MemberNotFound, NamespaceNotFound, NotAuthorized

__all__ = ["MemberNotFound", "NamespaceNotFound", "NotAuthorized"]
