"""The end-to-end checks both backends share (tests/support/pipeline_checks.py: tests/kind and
tests/cluster) pass on what they should accept and fail, naming the pod or claim, on what not."""

from __future__ import annotations

import pytest

from tests.support import pipeline_checks as checks


def pod(name: str, try_number: int, phase: str) -> dict:
    return {"metadata": {"name": name, "labels": {"try_number": str(try_number)}}, "status": {"phase": phase}}


def claim(name: str, uid: str, phase: str = "Bound", keep: bool = True, release: str = "mlops") -> dict:
    ann = {"meta.helm.sh/release-name": release}
    if keep:
        ann[checks.KEEP_ANNOTATION] = "keep"
    return {"metadata": {"name": name, "namespace": "mlops-jobs", "uid": uid, "annotations": ann},
            "status": {"phase": phase}}


def test_retried_accepts_a_failed_or_deleted_try_then_a_success():
    checks.assert_retried([pod("a-1", 1, "Failed"), pod("a-2", 2, "Succeeded")], 2)
    checks.assert_retried([pod("a-1", 1, "Running"), pod("a-2", 2, "Running")], 2)  # deleted while running (kind)


@pytest.mark.parametrize(("pods", "final", "message"), [
    ([pod("a-1", 1, "Succeeded")], 1, "never retried"),
    ([pod("a-2", 2, "Succeeded")], 2, "pods by try"),
    ([pod("a-1", 1, "Succeeded"), pod("a-2", 2, "Succeeded")], 2, "earlier try Succeeded"),
])
def test_retried_fails_when_the_task_was_not_retried_as_it_says(pods, final, message):
    with pytest.raises(AssertionError, match=message):
        checks.assert_retried(pods, final)


def test_kept_claims_are_those_of_the_release_with_resource_policy_keep():
    got = checks.kept_claims([claim("ws", "1"), claim("tmp", "2", keep=False), claim("other", "3", release="x")], "mlops")
    assert [c["metadata"]["name"] for c in got] == ["ws"]


@pytest.mark.parametrize(("after", "message"), [
    ([], "was deleted by helm uninstall"),
    ([claim("ws", "new")], "was re-created"),
    ([claim("ws", "1", phase="Lost")], "Lost"),
])
def test_claims_kept_fails_for_a_deleted_recreated_or_unbound_claim(after, message):
    checks.assert_claims_kept([claim("ws", "1")], [claim("ws", "1")])
    with pytest.raises(AssertionError, match=message):
        checks.assert_claims_kept([claim("ws", "1")], after)
