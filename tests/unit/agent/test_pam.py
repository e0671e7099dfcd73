"""PAM checks against the host's real PAM stack, with throw-away local users."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from gofer.agent.config import load_agent_config
from gofer.agent.daemon import Goferd
from gofer.agent.pam import DEFAULT_SERVICE, PamError, authenticate
from gofer.agent.paths import Paths
from gofer.decorators import pam, remote
from gofer.errors import GoferError
from gofer.rmi import wire
from gofer.rmi.catalog import Catalog, remote_class
from gofer.rmi.context import Context
from gofer.rmi.dispatcher import Dispatcher

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: creates local users, and pam_unix reads /etc/shadow only as root",
)


@dataclass(frozen=True)
class LocalUser:
    name: str
    password: str


def run(*command: str, stdin: str | None = None) -> None:
    subprocess.run(command, input=stdin, text=True, check=True, capture_output=True)


@pytest.fixture(scope="module")
def make_user() -> Iterator[Callable[..., LocalUser]]:
    """Creates local users with random passwords; deletes them all at the end."""
    created: list[str] = []

    def make(*useradd_options: str) -> LocalUser:
        user = LocalUser(f"gofer-pam-{secrets.token_hex(4)}", secrets.token_urlsafe(16))
        run(
            "useradd",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            *useradd_options,
            user.name,
        )
        created.append(user.name)
        run("chpasswd", stdin=f"{user.name}:{user.password}\n")
        return user

    try:
        yield make
    finally:
        for name in created:
            run("userdel", name)


@pytest.fixture(scope="module")
def local_user(make_user: Callable[..., LocalUser]) -> LocalUser:
    return make_user()


@contextmanager
def pam_service(prefix: str, stack: str) -> Iterator[str]:
    """A PAM service of our own in /etc/pam.d, removed afterwards; yields its name."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    path = Path("/etc/pam.d", name)
    path.write_text(stack)
    try:
        yield name
    finally:
        path.unlink()


@pytest.fixture(scope="module")
def quick_service() -> Iterator[str]:
    """A PAM service running pam_unix without its ~2 s failure delay, so refusals are fast."""
    stack = "auth required pam_unix.so nodelay\naccount required pam_unix.so\n"
    with pam_service("gofer-pam-test", stack) as name:
        yield name


# -- the real PAM stack ----------------------------------------------------------------


@needs_root
def test_right_password_passes_with_the_default_service(local_user: LocalUser) -> None:
    assert DEFAULT_SERVICE == "passwd"
    authenticate(local_user.name, local_user.password)


@needs_root
def test_default_service_really_checks_the_password(local_user: LocalUser) -> None:
    # Debian's /etc/pam.d/passwd has no auth lines; libpam falls back to "other".
    # The one slow test: the default stack keeps pam_unix's failure delay.
    with pytest.raises(PamError, match=f"'{DEFAULT_SERVICE}' refused user"):
        authenticate(local_user.name, local_user.password + "x")


@needs_root
def test_wrong_password_is_refused(local_user: LocalUser, quick_service: str) -> None:
    authenticate(local_user.name, local_user.password, service=quick_service)
    wrong = secrets.token_hex(8)
    with pytest.raises(PamError, match="Authentication failure") as caught:
        authenticate(local_user.name, wrong, service=quick_service)
    assert local_user.name in str(caught.value)
    assert wrong not in str(caught.value)


@needs_root
def test_unknown_user_is_refused(quick_service: str) -> None:
    with pytest.raises(PamError, match="refused user 'gofer-pam-nobody'"):
        authenticate("gofer-pam-nobody", "whatever", service=quick_service)


@needs_root
def test_expired_account_is_refused(
    make_user: Callable[..., LocalUser], quick_service: str
) -> None:
    user = make_user("--expiredate", "1970-01-02")
    with pytest.raises(PamError, match="expired"):
        authenticate(user.name, user.password, service=quick_service)


# -- refused before PAM is asked ---------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "password", "service", "reason"),
    [
        ("root", "", "passwd", "no password given"),
        ("", "pw", "passwd", "needs a user name"),
        ("ro\0ot", "pw", "passwd", "needs a user name"),
        ("root", "p\0w", "passwd", "contains a NUL"),
        ("root", "pw", "", "invalid PAM service"),
        ("root", "pw", "../../tmp/evil", "invalid PAM service"),
    ],
)
def test_bad_arguments_are_refused_without_asking_pam(
    user: str, password: str, service: str, reason: str
) -> None:
    with pytest.raises(PamError, match=reason):
        authenticate(user, password, service)


def test_pam_error_belongs_to_the_tree() -> None:
    assert issubclass(PamError, GoferError)


def test_missing_python_pam_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pam", None)
    with pytest.raises(PamError, match="needs the 'python-pam' package"):
        authenticate("root", "pw")


# -- which service checks a method's login ---------------------------------------------


@pytest.fixture(scope="module")
def deny_service() -> Iterator[str]:
    """A PAM service that refuses everyone."""
    with pam_service(
        "gofer-pam-deny", "auth required pam_deny.so\naccount required pam_deny.so\n"
    ) as name:
        yield name


def locked(user: str) -> Catalog:
    """A class whose methods want a login as ``user``: one names its PAM service, one does not."""

    class Locked:
        @remote
        @pam(user=user)
        def agent_default(self) -> str:
            return "in"

        @remote
        @pam(user=user, service="passwd")
        def named(self) -> str:
            return "in"

    return Catalog("locked", {"Locked": remote_class(Locked)}, {}, [], [], [])


def login_call(goferd: Goferd, user: LocalUser, method: str) -> dict[str, object]:
    dispatcher = Dispatcher([locked(user.name)], pam=goferd._pam)
    doc = wire.request_document(
        sn=wire.new_sn(),
        address="q",
        classname="Locked",
        method=method,
        pam=(user.name, user.password),
    )
    request = wire.parse_request(doc)
    return dispatcher.dispatch(request, Context(request.sn, None, _no_report, lambda: False))


def _no_report(total: int, completed: int, details: object) -> None:
    return None


@needs_root
def test_agent_conf_pam_service_checks_methods_that_name_none(
    tmp_path: Path, local_user: LocalUser, deny_service: str
) -> None:
    (tmp_path / "etc/gofer").mkdir(parents=True)
    (tmp_path / "etc/gofer/agent.conf").write_text(f"[pam]\nservice={deny_service}\n")
    paths = Paths.under(tmp_path)
    goferd = Goferd(paths, load_agent_config(paths))
    refused = login_call(goferd, local_user, "agent_default")
    assert refused.get("xclass") == "NotAuthorized", refused
    # A method that names its service keeps it.
    assert login_call(goferd, local_user, "named") == {"retval": "in"}
