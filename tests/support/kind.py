"""Paths of `make kind-up` (scripts/kind-up, scripts/kind/) and its Python helpers as modules."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from . import paths

KIND_DIR = paths.SCRIPTS_DIR / "kind"
KIND_UP = paths.SCRIPTS_DIR / "kind-up"
KIND_DOWN = paths.SCRIPTS_DIR / "kind-down"
KIND_VALUES = paths.VALUES_DIR / "kind.yaml"
GIT_SERVER_MANIFEST = KIND_DIR / "git-server.yaml"


def kind_script(name: str) -> ModuleType:
    """scripts/kind/<name>.py imported as a module (they are programs, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, KIND_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
