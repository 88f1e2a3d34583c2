"""tests/support/processes: the one start-and-wait fixture every server test uses fails loudly.

A server that exits before it is ready, or never becomes ready, must fail the test with the
reason and the end of its log, not hang or pass.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.support.processes import running, wait_ready


def test_a_process_that_exits_before_ready_fails_with_its_log(tmp_path) -> None:
    cmd = [sys.executable, "-c", "print('bad config: port'); raise SystemExit(3)"]
    with pytest.raises(RuntimeError, match=r"exited with 3 before ready(.|\n)*bad config: port"):
        with running(cmd, tmp_path / "srv.log", dict(os.environ), ready=lambda: False, timeout=30):
            pass


def test_a_check_that_never_passes_times_out_with_diagnostics() -> None:
    with pytest.raises(RuntimeError, match=r"thing not ready after 0.3s:\nlast log line"):
        wait_ready(lambda: False, lambda: None, 0.3, "thing", lambda: "last log line", interval=0.05)


def test_ready_returns_and_gone_is_not_consulted_after() -> None:
    calls = iter([False, False, True])
    seen = []
    wait_ready(lambda: next(calls), lambda: seen.append(1), 5, "thing", interval=0.01)
    assert len(seen) == 2
