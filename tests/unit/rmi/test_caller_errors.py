"""The errors callers of the existing gofer catch, by the names and paths they import them by."""

from __future__ import annotations

import pytest

from gofer import errors
from gofer.messaging import dispatcher as old_dispatcher
from gofer.rmi import dispatcher, exceptions, policy


def test_the_dispatch_errors_share_a_base() -> None:
    for cls in (errors.NotAuthorized, errors.NamespaceNotFound, errors.MemberNotFound):
        assert issubclass(cls, errors.DispatchError)
    assert issubclass(errors.DispatchError, errors.RmiError)


def test_gofer_rmi_dispatcher_names() -> None:
    assert dispatcher.DispatchError is errors.DispatchError
    assert dispatcher.NamespaceNotFound is errors.NamespaceNotFound
    assert dispatcher.MemberNotFound is errors.MemberNotFound
    assert dispatcher.RemoteException is errors.RemoteError


def test_the_2x_names_in_gofer_messaging_dispatcher() -> None:
    assert old_dispatcher.NotAuthorized is errors.NotAuthorized
    assert old_dispatcher.ClassNotFound is errors.NamespaceNotFound
    assert old_dispatcher.MethodNotFound is errors.MemberNotFound
    assert old_dispatcher.NotPermitted is errors.MemberNotFound
    assert old_dispatcher.DispatchError is errors.DispatchError


def test_request_timeout_answers_the_old_getters() -> None:
    assert policy.RequestTimeout is errors.RequestTimeoutError
    with pytest.raises(policy.RequestTimeout) as caught:
        raise errors.RequestTimeoutError("sn-1", 90)
    timeout = caught.value
    assert timeout.sn == "sn-1"
    assert timeout.sn() == "sn-1"
    assert timeout.timeout == 90
    assert timeout.timeout() == 90.0
    assert timeout.wait == 90


@pytest.mark.parametrize(
    ("xclass", "expected"),
    [
        ("ClassNotFound", errors.NamespaceNotFound),
        ("MethodNotFound", errors.MemberNotFound),
        ("NotPermitted", errors.MemberNotFound),
        ("SecretNotMatched", errors.NotAuthorized),
        ("SecretRequired", errors.NotAuthorized),
        ("NotAuthenticated", errors.NotAuthorized),
        ("DispatchError", errors.DispatchError),
    ],
)
def test_a_2x_agents_dispatch_errors_are_rebuilt_as_ours(
    xclass: str, expected: type[BaseException]
) -> None:
    rebuilt = exceptions.rebuild(
        {
            "exval": "Traceback ...",
            "xmodule": "gofer.rmi.dispatcher",
            "xclass": xclass,
            "xargs": ["Dog.bark(), not found"],
            "xstate": {},
        }
    )
    assert type(rebuilt) is expected
    assert rebuilt.args == ("Dog.bark(), not found",)


def test_other_modules_names_are_not_taken_for_ours() -> None:
    rebuilt = exceptions.rebuild({"xmodule": "zoo", "xclass": "ClassNotFound", "xargs": ["x"]})
    assert isinstance(rebuilt, errors.RemoteError)
