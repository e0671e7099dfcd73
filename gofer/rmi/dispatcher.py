"""Finds the plugin method a request names, checks who may call it, and runs it in its model."""

from __future__ import annotations

import functools
import hmac
import inspect
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from gofer.decorators import DIRECT, Marks
from gofer.errors import DispatchError, MemberNotFound, NamespaceNotFound, NotAuthorized
from gofer.errors import RemoteError as RemoteException
from gofer.rmi import model
from gofer.rmi.catalog import Catalog, Member
from gofer.rmi.context import Context
from gofer.rmi.wire import Request

log = logging.getLogger(__name__)

#: Checks PAM credentials: ``authenticate(user, password, service)`` raising on failure;
#: ``service`` is empty when the method names none (the agent's default applies).
PamCheck = Callable[[str, str, str], None]


class Dispatcher:
    """Routes requests to the remote classes and functions of loaded plugins.

    Class names are global across plugins (``agent.Dog()`` names no plugin);
    module functions are reached through their plugin's namespace
    (``agent.demo.echo()``). Extra catalogs (such as the built-in ``Admin``)
    are added like plugins.

    Args:
        catalogs: the catalogs to start with.
        pam: the PAM check for ``@pam`` methods; None refuses them all.
        default_model: the model for methods that name none.
    """

    def __init__(
        self,
        catalogs: Iterable[Catalog] = (),
        pam: PamCheck | None = None,
        default_model: str = DIRECT,
    ) -> None:
        self._catalogs: dict[str, Catalog] = {}
        self._lock = threading.Lock()
        self._pam = pam
        self.default_model = default_model
        for catalog in catalogs:
            self.add(catalog)

    def add(self, catalog: Catalog) -> None:
        """Add (or replace) a plugin's catalog."""
        with self._lock:
            taken = {
                name
                for other in self._catalogs.values()
                if other.namespace != catalog.namespace
                for name in other.classes
            }
            for name in catalog.classes.keys() & taken:
                log.warning("class %s of plugin %s hides another plugin's", name, catalog.namespace)
            self._catalogs[catalog.namespace] = catalog

    def remove(self, namespace: str) -> None:
        """Forget a plugin's catalog."""
        with self._lock:
            self._catalogs.pop(namespace, None)

    def catalogs(self) -> list[Catalog]:
        """The catalogs, in the order they were added."""
        with self._lock:
            return list(self._catalogs.values())

    def resolve(self, request: Request) -> tuple[Member, type | None]:
        """The member a request names, and its class (None for a module function).

        Raises:
            NamespaceNotFound: no class or plugin of that name.
            MemberNotFound: no remote method or function of that name.
        """
        classname, method = request.classname, request.method
        with self._lock:
            catalogs = list(self._catalogs.values())
        for catalog in reversed(catalogs):
            remote_class = catalog.classes.get(classname)
            if remote_class is not None:
                member = remote_class.methods.get(method)
                if member is None or method.startswith("_"):
                    raise MemberNotFound(f'"{classname}.{method}()" not provided by plugin.')
                return member, remote_class.cls
        for catalog in catalogs:
            if catalog.namespace == classname:
                member = catalog.functions.get(method)
                if member is None or method.startswith("_"):
                    raise MemberNotFound(f'"{classname}.{method}()" not provided by plugin.')
                return member, None
        raise NamespaceNotFound(f'"{classname}" not provided by plugin.')

    def dispatch(self, request: Request, context: Context) -> dict[str, Any]:
        """Run the request and return the wire ``result`` object (retval or exception)."""
        try:
            member, cls = self.resolve(request)
            self.authorize(request, member.marks)
            _check_arguments(request, member)
        except Exception as exc:  # noqa: BLE001 - every refusal becomes an exception reply
            return model.RemoteFailure.from_exception(exc).result()
        target = _target(request, member, cls)
        outcome = model.run(
            member.marks.model or self.default_model, model.Invocation(target), context
        )
        if outcome.error is not None:
            return outcome.error.result()
        return _json_result(request, outcome.retval)

    def authorize(self, request: Request, marks: Marks) -> None:
        """Check the shared secret and PAM login a member asks for.

        Raises:
            NotAuthorized: a secret or login is wanted and was not given right.
        """
        if marks.secret is not None and not _secret_matches(marks.secret, request.secret):
            raise NotAuthorized(f"{request.classname}.{request.method}(): secret not matched")
        if marks.pam_user is not None:
            if request.pam is None or request.pam[0] != marks.pam_user or self._pam is None:
                raise NotAuthorized(
                    f"{request.classname}.{request.method}(): login as {marks.pam_user} required"
                )
            try:
                self._pam(request.pam[0], request.pam[1], marks.pam_service or "")
            except Exception as exc:
                raise NotAuthorized(
                    f"{request.classname}.{request.method}(): PAM login refused"
                ) from exc


def _secret_matches(wanted: object, given: str | None) -> bool:
    if given is None:
        return False
    if callable(wanted):
        try:
            wanted = wanted()
        except Exception:
            log.exception("secret callable failed")
            return False
    if isinstance(wanted, str):
        wanted = [wanted]
    if not isinstance(wanted, (list, tuple)):
        return False
    # Constant-time comparisons: a secret's prefix must not show in timing.
    given_bytes = given.encode()
    return any(
        isinstance(one, str) and hmac.compare_digest(given_bytes, one.encode()) for one in wanted
    )


@functools.lru_cache(maxsize=4096)
def _signature(function: Callable[..., Any]) -> inspect.Signature | None:
    """The signature of a remote function (computed once: it is costly)."""
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def _check_arguments(request: Request, member: Member) -> None:
    """Raise TypeError naming the method when the arguments do not fit its signature."""
    signature = _signature(member.function)
    if signature is None:
        return
    args: list[Any] = list(request.args)
    if member.kind in ("method", "class"):
        args.insert(0, None)
    try:
        signature.bind(*args, **request.kws)
    except TypeError as exc:
        raise TypeError(f"{request.classname}.{request.method}(): {exc}") from None


def _target(request: Request, member: Member, cls: type | None) -> Callable[[], Any]:
    """The call to make, constructing the instance inside it (so in the fork child)."""
    function, args, kws = member.function, request.args, request.kws
    if cls is None or member.kind == "static":
        return lambda: function(*args, **kws)
    if member.kind == "class":
        return lambda: function(cls, *args, **kws)
    cargs, ckws = request.cntr if request.cntr is not None else ([], {})
    return lambda: function(cls(*cargs, **ckws), *args, **kws)


def _json_result(request: Request, retval: Any) -> dict[str, Any]:
    try:
        json.dumps(retval)
    except (TypeError, ValueError, RecursionError) as exc:
        error = TypeError(
            f"{request.classname}.{request.method}() returned a value JSON cannot carry: {exc}"
        )
        return model.RemoteFailure.from_exception(error).result()
    return {"retval": retval}


# The existing gofer's callers import its dispatch errors from here.
__all__ = [
    "DispatchError",
    "Dispatcher",
    "MemberNotFound",
    "NamespaceNotFound",
    "NotAuthorized",
    "PamCheck",
    "RemoteException",
]
