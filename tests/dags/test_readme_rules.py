"""Every rule the DAG tests enforce on any DAG folder (tests/dags/policy.py) is written in
dags/README.md ("Rules `make test-dags` checks"), and has a test that enforces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dags import policy
from tests.dags.policy import rule_uses

HERE = Path(__file__).resolve().parent


def test_the_readme_lists_every_rule_and_no_other() -> None:
    got = policy.readme_rules(policy.README.read_text())
    want = policy.readme_lines()
    assert got == want, (
        "dags/README.md's rule list differs from tests/dags/policy.py RULES: "
        "run `.venv/bin/python -m tests.dags.policy` to rewrite it"
    )


def test_every_rule_has_a_test_and_every_marked_test_a_rule() -> None:
    uses = rule_uses()
    assert set(uses) - set(policy.RULES) == set(), "@rule ids that RULES does not define"
    untested = sorted(set(policy.RULES) - set(uses))
    assert untested == [], f"rules of RULES no test enforces (mark one with @rule): {untested}"


def test_an_unknown_rule_id_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rule ids \\['tagz'\\]"):
        policy.rule("tagz")


def test_a_drifted_readme_is_detected(tmp_path: Path) -> None:
    """The comparison can fail: a README whose block lost a rule or changed a sentence differs."""
    lines = policy.readme_lines()
    for changed in (lines[1:], [lines[0] + " (or not)", *lines[1:]]):
        text = "\n".join(["intro", policy.BEGIN, *changed, policy.END, "outro"])
        assert policy.readme_rules(text) != lines
    with pytest.raises(ValueError, match="no <!-- rules:begin -->"):
        policy.readme_rules("no block here")
