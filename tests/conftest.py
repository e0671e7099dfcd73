"""Suite-wide rules: in CI (or with GOFER_REQUIRE_BROKERS=1) a skipped broker test fails the run."""

from __future__ import annotations

import pytest

from tests import brokers


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
