"""The production guide (values/README.md) and its marked steps: each `<!-- guide-step: NAME -->`
before a bash block is one step the guide tests run as written (tests/cluster/test_guide.py)
and the docs tests read (tests/values/test_guide_docs.py)."""

from __future__ import annotations

import re

from tests.support.paths import REPO

GUIDE = REPO / "values" / "README.md"
STEP_RE = re.compile(r"<!-- guide-step: ([a-z0-9-]+) -->\s*\n```bash\n(.*?)\n```", re.S)


def guide_steps() -> dict[str, str]:
    """Step name -> its bash block, in the guide's order."""
    return dict(STEP_RE.findall(GUIDE.read_text()))
