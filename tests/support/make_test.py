"""Inside `make test` a skip is a failure: the hooks tests/conftest.py registers.

`make test` sets MLOPS_MAKE_TEST=1 for every tier: there a test that skips (at collection or
while running) fails instead, because a missing prerequisite must stop the suite, not quietly
shrink it. Two kinds of skip stay allowed: the kind end-to-end tests (marker `kind`, folder
tests/kind), which a user runs by hand with `make kind-test`, and a test marked
`machine_may_differ`, whose skip says what this machine has that the test cannot use (e.g.
real NVIDIA devices). A tier run by hand (`make test-chart`, plain pytest) keeps its skips.
"""

from __future__ import annotations

import os

import pytest

MAY_SKIP = ("kind", "machine_may_differ")


def _in_make_test() -> bool:
    return os.environ.get("MLOPS_MAKE_TEST") == "1"


def _skip_is_a_failure(report: pytest.TestReport | pytest.CollectReport, item: pytest.Item | None) -> None:
    if not (_in_make_test() and report.skipped) or hasattr(report, "wasxfail"):
        return
    if item is not None and any(item.get_closest_marker(m) for m in MAY_SKIP):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped inside `make test` (MLOPS_MAKE_TEST=1), which must run it: {reason}\n"
                       "A prerequisite that `make test` provides is missing; run this tier's make target "
                       "to see which.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    _skip_is_a_failure(outcome.get_result(), item)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield
    report = outcome.get_result()
    if isinstance(collector, pytest.Module) and "tests/kind/" not in str(collector.path).replace(os.sep, "/"):
        _skip_is_a_failure(report, None)
