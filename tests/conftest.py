"""Suite-wide rules: in CI (or with GOFER_REQUIRE_BROKERS=1) a skipped broker test fails the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from gofer.rmi import transport
from tests import brokers

# Property tests assert behaviour, never speed: on a busy two-core CI machine
# Hypothesis's per-example deadline and "generation is slow" check fail
# correct code (seen on tests/unit/qpid/test_codec.py under load).
settings.register_profile("gofer", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("gofer")


def _skipped_broker_tests(config: pytest.Config) -> list[pytest.TestReport]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not brokers.required():
        return []
    return [r for r in reporter.stats.get("skipped", []) if "broker" in r.keywords]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = _skipped_broker_tests(terminalreporter.config)
    if skipped:
        terminalreporter.write_line(
            f"FAILED: {len(skipped)} broker test(s) skipped while brokers are required",
            red=True,
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _skipped_broker_tests(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def url() -> str:
    """The RabbitMQ URL for RMI and goferd tests (fails in CI when unreachable)."""
    for test_broker in brokers.brokers():
        if test_broker.name == "rabbitmq":
            if test_broker.reachable():
                return test_broker.url
            message = f"RabbitMQ not reachable at {test_broker.parsed}"
            break
    else:
        message = "RabbitMQ turned off (GOFER_TEST_RABBITMQ=off)"
    if brokers.required():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _close_transports() -> Iterator[None]:
    """Close the callers' shared connections once the session ends."""
    yield
    transport.close_all()


def mark_broker_tests(items: list[pytest.Item], folder: str) -> None:
    """Mark every test under ``tests/<folder>`` as a broker test."""
    for item in items:
        if item.nodeid.startswith(f"tests/{folder}/"):
            item.add_marker(pytest.mark.broker)
