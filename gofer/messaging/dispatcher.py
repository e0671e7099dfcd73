"""The 2.x home of the dispatch errors callers catch (``NotAuthorized``, ...): gofer.errors.

gofer 2.x named some of them otherwise; each old name is the error our agent
raises in that case, and a 2.x agent's reply naming it is rebuilt as that
error (gofer.rmi.exceptions).
"""

from gofer.errors import DispatchError, MemberNotFound, NamespaceNotFound, NotAuthorized
from gofer.errors import RemoteError as RemoteException

#: A class the agent does not provide (3.0 and ours: ``NamespaceNotFound``).
ClassNotFound = NamespaceNotFound
#: A method the class does not provide (3.0 and ours: ``MemberNotFound``).
MethodNotFound = MemberNotFound
#: A method not decorated ``@remote``: to a caller, one the class does not provide.
NotPermitted = MemberNotFound

__all__ = [
    "ClassNotFound",
    "DispatchError",
    "MemberNotFound",
    "MethodNotFound",
    "NamespaceNotFound",
    "NotAuthorized",
    "NotPermitted",
    "RemoteException",
]
