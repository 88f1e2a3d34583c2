"""One deep merge for the tests: values overlays, rendered objects and patches."""

from __future__ import annotations

import copy
from typing import Any


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base.get(key), value)
        return out
    return copy.deepcopy(patch)


def deep_merge(*documents: dict[str, Any]) -> dict[str, Any]:
    """`documents` merged left to right into a new dict (mappings merged key by key, anything else
    replaced); the arguments are not changed and share nothing with the result."""
    out: dict[str, Any] = {}
    for doc in documents:
        out = _merge(out, doc)
    return out
