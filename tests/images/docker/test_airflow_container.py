"""The Airflow image imports every DAG with the chart's rendered platform.json and pod
templates mounted where the chart mounts them (the official chart's dag-processor Deployment
rendered with values/kind.yaml: its volumeMounts of the platform and pod-template ConfigMaps,
its pod security context), the DAG folder of its airflow.cfg, and nothing set by the test that
the cluster would not set. The base may be a STAND-IN for apache/airflow:3.1.8-python3.11
(see conftest.py): the provider versions are installed by images/airflow either way."""

from __future__ import annotations

import json
import re

import pytest

from tests.images.docker import engine
from tests.images.docker.platform import kind_objects, load_dagbag
from tests.support import paths

# The dag-processor parses the folder as a DAG bundle, which puts the folder on sys.path (the
# DAGs import their helper package mlops_platform from it); a plain DagBag does not.
DAGBAG = (
    "import json, sys\n"
    "sys.path.append(sys.argv[1])\n"
    "from airflow.models.dagbag import DagBag\n"
    "bag = DagBag(dag_folder=sys.argv[1], include_examples=False, safe_mode=False)\n"
    "print(json.dumps({'dags': sorted(bag.dags), 'errors': {k: str(v)[-800:] for k, v in bag.import_errors.items()}}))\n"
)


@pytest.fixture(scope="module")
def dag_processor(kind_env):
    """The official chart's dag-processor pod spec and container, and the DAG folder of its
    airflow.cfg, rendered with values/kind.yaml."""
    objects = kind_objects(include_subchart=True)
    (dep,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("dag-processor")]
    spec = dep["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "dag-processor"]
    cfg = next(o for o in objects if o["kind"] == "ConfigMap" and "airflow.cfg" in (o.get("data") or {}))
    (folder,) = re.findall(r"^dags_folder = (\S+)$", cfg["data"]["airflow.cfg"], re.M)
    return spec, container, folder


def test_airflow_image_imports_every_dag(built_images, kind_env, dag_processor) -> None:
    spec, container, dags_folder = dag_processor
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    platform, templates = mounts["mlops-platform"], mounts["mlops-pod-templates"]
    psc = spec["securityContext"]
    csc = container.get("securityContext") or {}
    run = engine.Run(
        image=engine.image("airflow"),
        argv=["python", "-c", DAGBAG, dags_folder],
        env={"AIRFLOW__CORE__DAGS_FOLDER": dags_folder, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        user=f"{psc['runAsUser']}:{psc['runAsGroup']}",
        read_only=bool(csc.get("readOnlyRootFilesystem")),
        cap_drop_all="ALL" in ((csc.get("capabilities") or {}).get("drop") or []),
        no_new_privileges=csc.get("allowPrivilegeEscalation") is False,
        mounts=[
            (str(kind_env.directory), platform["mountPath"], True),
            (str(kind_env.templates_dir), templates["mountPath"], True),
            (str(paths.DAGS_DIR), dags_folder, True),
        ],
    )
    assert run.user == "50000:0", "the official image's user, as the chart's security context says"
    proc = engine.run_once(run, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}, result["errors"]
    expected = sorted(load_dagbag(kind_env).dags)
    assert result["dags"] == expected and "ml_training" in expected


def test_airflow_image_versions_and_entrypoint(built_images) -> None:
    """`docker run <image> version` goes through the entry point to `airflow version`; the
    providers are the versions of images/airflow/requirements.txt."""
    out = engine.docker("run", "--rm", "--network", "none", "--label", engine.LABEL,
                        engine.image("airflow"), "version").stdout.strip()  # fmt: skip
    assert out.splitlines()[-1] == "3.1.8"
    pins = dict(
        line.split("==") for line in (paths.IMAGES_DIR / "airflow" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )  # fmt: skip
    code = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    got = json.loads(engine.docker("run", "--rm", "--network", "none", "--label", engine.LABEL,
                                   "--entrypoint", "python", engine.image("airflow"), "-c", code,
                                   *pins).stdout)  # fmt: skip
    assert got == pins
