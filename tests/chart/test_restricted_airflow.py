"""The official chart's containers, with our `airflow:` values, follow the restricted Pod
Security Standard too (tests/chart/test_restricted.py covers our own objects)."""

from __future__ import annotations

import pytest

from tests.support import paths
from tests.support.helm import is_subchart_object, render_chart
from tests.support.k8s import containers, pod_specs, restricted_violations

try:  # the overlays helper is moving from tests/values to tests/support
    from tests.support.overlays import with_overlays
except ImportError:  # pragma: no cover
    from tests.values.overlays import with_overlays

FILES = [None, *paths.values_files()]
GIT_SYNC = {
    "airflow": {"dags": {"gitSync": {"enabled": True, "repo": "https://git.example.com/ml/dags.git"}}}
}


def subchart_violations(objects: list[dict]) -> tuple[int, list[str]]:
    count, problems = 0, []
    for obj in objects:
        if not is_subchart_object(obj):
            continue
        for path, spec in pod_specs(obj):
            where = f"{obj['kind']}/{obj['metadata']['name']} {path}"
            count += len(list(containers(spec)))
            problems += restricted_violations(spec, where)
    return count, problems


@pytest.mark.parametrize("values_file", FILES, ids=lambda p: p.name if p else "defaults")
def test_every_airflow_container_is_restricted(values_file) -> None:
    files = with_overlays(values_file) if values_file else []
    count, problems = subchart_violations(
        render_chart(values_files=files, include_subchart=True, validate=False)
    )
    assert count >= 5, count
    assert not problems, "\n".join(problems)


def test_git_sync_and_statsd_are_restricted() -> None:
    count, problems = subchart_violations(
        render_chart(values={**GIT_SYNC}, include_subchart=True, validate=False)
    )
    assert not problems, "\n".join(problems)


def test_the_check_sees_the_official_defaults() -> None:
    """Without our values the official chart's containers break the restricted rules."""
    values = {"airflow": {"securityContexts": {"pod": None, "containers": None}}}
    _, problems = subchart_violations(render_chart(values=values, include_subchart=True, validate=False))
    assert any("runAsNonRoot" in p for p in problems)
