"""The example files of dags/README.md, section "Write your own pipeline", as files of a DAG folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from tests.support import paths

SECTION = "## Write your own pipeline"


def readme_examples(text: str | None = None) -> dict[str, str]:
    """The section's code blocks as the files they stand for: relative path -> content.
    A Python block is `<dag_id>.py` (its DAG id from `dag_args("<id>"` or `dag_id="<id>"`), a YAML
    block `pipelines/<top-level key>.yaml`."""
    text = text if text is not None else (paths.DAGS_DIR / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    files: dict[str, str] = {}
    for lang, code in re.findall(r"^```(python|yaml)\n(.*?)^```", section, re.S | re.M):
        if lang == "python":
            found = re.search(r"""(?:dag_args\(|dag_id=)\s*["']([A-Za-z0-9_]+)["']""", code)
            assert found, f"README Python example without a DAG id:\n{code}"
            files[f"{found.group(1)}.py"] = code
        else:
            (dag_id,) = yaml.safe_load(code)
            files[f"pipelines/{dag_id}.yaml"] = code
    return files


def folder_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of dags/ with these files added (none may replace a shipped file)."""
    folder = tmp_path / "dags"
    shutil.copytree(paths.DAGS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, content in files.items():
        assert not (folder / name).exists(), f"{name}: a README example would replace a shipped file"
        (folder / name).write_text(content)
    return folder
