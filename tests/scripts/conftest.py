"""Fixtures shared by the kind script tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.helm import helm_template
from tests.support.kind import KIND_VALUES
from tests.support.overlays import with_overlays


@pytest.fixture(scope="session")
def kind_rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """values/kind.yaml rendered as kind-up renders it (+ the known_hosts overlay)."""
    text = helm_template(values_files=with_overlays(KIND_VALUES), namespace="mlops", release="mlops")
    out = tmp_path_factory.mktemp("kind-render") / "rendered.yaml"
    out.write_text(text)
    return out
