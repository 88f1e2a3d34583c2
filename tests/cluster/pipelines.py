"""Helpers of tests/cluster/test_pipelines.py: the platform installed for the pipelines, Airflow
set up to run its DAGs against it, and a recorder of the task pods the API server sees.

kwok nodes run no containers: a task pod here is created by the real KubernetesPodOperator
(provider 10.25 under Airflow 3.1.8) in the real API server, admitted (Pod Security, RBAC of the
chart's task-launcher Role for the token of the service account the chart binds), placed by the
real kube-scheduler, and its phase (Running, then Succeeded, or Failed when the pod carries the
annotation ``mlops.test/kwok-fail: "true"``) is written by kwok. Nothing is pulled or executed:
what the trainer would print or write is not there. Operator settings forced by that:

- ``get_logs=False``: kwok has no kubelet, ``pods/log`` cannot answer (the platform's default is
  True; with a real kubelet the logs are streamed);
- ``do_xcom_push`` stays False (the platform default): no sidecar, nothing written by a container.

MLflow does not run here either: the REST helpers (``mlops_platform.mlflow_rest``) the
in-process tasks call are replaced by a stand-in recording the calls; the process tests
(tests/dags/test_pipelines_with_mlflow.py, tests/images) run them against a real MLflow.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.cluster import platform_release as pf
from tests.support import pipeline_checks as checks
from tests.support import platform_env
from tests.support.paths import VALUES_DIR

GPU = "nvidia.com/gpu"
GPU_NODES = {"kwok-gpu-0", "kwok-gpu-1"}
CPU_NODES = {"kwok-cpu-0", "kwok-cpu-1"}
FAIL_ANNOTATION = "mlops.test/kwok-fail"
DELAY_ANNOTATION = "mlops.test/kwok-delay"
KPO_MODULE = "airflow.providers.cncf.kubernetes.operators.pod"


def pss_labels(level: str) -> dict[str, str]:
    return {"pod-security.kubernetes.io/enforce": level, "pod-security.kubernetes.io/enforce-version": "latest"}


@dataclass
class PipelinePlatform:
    """The installed release and the files/credentials Airflow uses, as in the cluster."""

    release: pf.Release
    tasks_namespace: str
    directory: Path  # platform.json, its schema, serving-deployment.yaml (the platform ConfigMap)
    templates_dir: Path  # <profile>.yaml (the pod-templates ConfigMap)
    kubeconfig: Path  # server + CA + a TokenRequest token of the launching service account
    service_account: tuple[str, str]
    platform: dict[str, Any]
    install_seconds: float = 0.0
    serving_namespace: str = ""

    @property
    def namespace(self) -> str:
        return self.release.namespace

    @property
    def gpu_pool(self) -> tuple[str, int]:
        return self.platform["gpuPool"]["name"], int(self.platform["gpuPool"]["slots"])


def install_platform(cluster, root: Path, namespace: str = "pipelines", tasks_namespace: str = "pipelines-jobs",
                     gpu_slots: int = 16) -> PipelinePlatform:
    """values/production.example.yaml installed with helm --wait as release `mlops` in `namespace`
    (task pods in `tasks_namespace`, enforce restricted; model servers in `<namespace>-serving`,
    baseline: a namespace of their own, never the release's or the tasks'), the GPU
    pool sized to the simulated cluster (2 nodes x 8 GPUs = `gpu_slots`), placeholders for the
    Secrets it reads, a static PV per claim. Then the platform and pod-template ConfigMaps are read
    back from the API server into files (what the chart mounts at /opt/airflow/platform and
    /opt/airflow/pod-templates) and a kubeconfig is written with a TokenRequest token of the
    account the chart's task-launcher RoleBinding binds (LocalExecutor: the scheduler's)."""
    serving_namespace = f"{namespace}-serving"
    rel = pf.Release("mlops", namespace, [VALUES_DIR / "production.example.yaml"], tasks_namespace=tasks_namespace,
                     sets=[f"tasks.namespace={tasks_namespace}", f"serving.namespace={serving_namespace}",
                           f"pools.items[0].slots={gpu_slots}"])
    cluster.namespace(namespace, labels=pss_labels("baseline"))
    cluster.namespace(tasks_namespace, labels=pss_labels("restricted"))
    cluster.namespace(serving_namespace, labels=pss_labels("baseline"))
    for node in sorted(CPU_NODES):  # the production example's cpu profile selects node-pool=general
        cluster.core.patch_node(node, {"metadata": {"labels": {"node-pool": "general"}}})
    for node in sorted(GPU_NODES):  # ... and its gpu-8 profile a whole p4d.24xlarge node
        cluster.core.patch_node(node, {"metadata": {"labels": {"node.kubernetes.io/instance-type": "p4d.24xlarge"}}})
    docs = pf.render(cluster, rel)
    for (ns, name), spec in pf.referenced_secrets(docs, namespace, tasks_namespace).items():
        pf.create_secret(cluster, ns, name, spec["type"], spec["keys"])
    pf.provide_volumes(cluster, docs, rel, f"vol-{namespace}")
    took = pf.helm_install(cluster, rel, "install")

    directory = root / "platform"
    templates_dir = root / "pod-templates"
    directory.mkdir(parents=True, exist_ok=True)
    templates_dir.mkdir(parents=True, exist_ok=True)
    platform: dict[str, Any] = {}
    for cm in cluster.core.list_namespaced_config_map(namespace).items:
        data = cm.data or {}
        if "platform.json" in data:
            for key, text in data.items():
                (directory / key).write_text(text)
            platform = json.loads(data["platform.json"])
        elif data and "pod-templates" in cm.metadata.name and all(k.endswith(".yaml") for k in data):
            for key, text in data.items():
                (templates_dir / key).write_text(text)
    assert platform and list(templates_dir.glob("*.yaml")), "platform or pod-templates ConfigMap not found"

    binding = cluster.rbac.read_namespaced_role_binding("mlops-airflow-mlops-task-launcher", tasks_namespace)
    launcher = next(s for s in binding.subjects if s.name.endswith("-scheduler"))
    kubeconfig = root / "launcher.kubeconfig"
    write_token_kubeconfig(cluster, launcher.namespace, launcher.name, kubeconfig)
    return PipelinePlatform(rel, tasks_namespace, directory, templates_dir, kubeconfig,
                            (launcher.namespace, launcher.name), platform, took, serving_namespace)


def write_token_kubeconfig(cluster, namespace: str, account: str, path: Path, seconds: int = 7200) -> None:
    """A kubeconfig authenticated by a bound token (TokenRequest) of the service account: what the
    pod of that account would read from /var/run/secrets/kubernetes.io/serviceaccount."""
    tr = cluster.core.create_namespaced_service_account_token(account, namespace, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["https://kubernetes.default.svc.cluster.local"],
                                       expiration_seconds=seconds)))
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    base64.b64decode(ca)  # present and valid
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": cluster.server, "certificate-authority-data": ca}}],
        "users": [{"name": account, "user": {"token": tr.status.token}}],
        "contexts": [{"name": account, "context": {"cluster": "local", "user": account, "namespace": namespace}}],
        "current-context": account,
    }))
    path.chmod(0o600)


# --- what the API server saw ---------------------------------------------------------------------

@dataclass
class PodRecord:
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    node: str | None = None
    gpus: int = 0
    phases: list[str] = field(default_factory=list)
    created: float = 0.0
    scheduled: float | None = None  # first seen with a node
    running: float | None = None
    finished: float | None = None
    deleted: float | None = None
    spec: Any = None
    unschedulable: list[str] = field(default_factory=list)  # PodScheduled=False messages, as the scheduler wrote them

    @property
    def phase(self) -> str:
        return self.phases[-1] if self.phases else "?"

    def describe(self) -> str:
        return (f"{self.labels.get('task_id')}[{self.labels.get('map_index', '-')}] try {self.labels.get('try_number')} "
                f"-> {self.node} gpus={self.gpus} {'/'.join(self.phases)}{' deleted' if self.deleted else ''}")


class PodRecorder:
    """Watches the pods of a namespace (as the administrator) from a thread and keeps, per pod, its
    spec, node, GPU limit, the phases it went through and when, and whether it was deleted.

    A watch that ends or fails otherwise is resumed from the last resourceVersion it delivered,
    so the API server replays what happened meanwhile: nothing is missed (kept in ``errors``, for
    the record). A watch that expires (410: that version is gone) is followed by a re-list whose
    pods are recorded; events between the two may have been missed, so each re-list is kept in
    ``gaps``: a test that concludes from the absence of an event (e.g. no pod was ever
    Unschedulable) must first check that ``gaps`` is empty."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.pods: dict[str, PodRecord] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self.gaps: list[str] = []  # every re-list after an expired watch: events may be missing there
        self.errors: list[str] = []  # watches that failed and were resumed from their last version
        self._rv = self.core.list_namespaced_pod(namespace).metadata.resource_version
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"pod-recorder-{namespace}")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._watch = watch.Watch()
            try:
                for ev in self._watch.stream(self.core.list_namespaced_pod, self.namespace,
                                             resource_version=self._rv, timeout_seconds=30):
                    self._record(ev["type"], ev["object"])
                    self._rv = ev["object"].metadata.resource_version
                    if self._stop.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:  # expired: re-list, recording what the list shows
                    self._relist(f"watch expired (410) at resourceVersion {self._rv}")
                else:
                    self.errors.append(f"watch failed: {exc.status} {exc.reason}")
                    time.sleep(0.5)
            except Exception as exc:  # noqa: BLE001 (kept in errors; the watch resumes from its version)
                self.errors.append(f"watch failed: {type(exc).__name__}: {exc}")
                time.sleep(0.5)

    def _relist(self, why: str) -> None:
        self.gaps.append(why)
        try:
            listed = self.core.list_namespaced_pod(self.namespace)
        except Exception as exc:  # noqa: BLE001
            self.gaps.append(f"re-list failed: {type(exc).__name__}: {exc}")
            return
        for pod in listed.items:
            self._record("MODIFIED", pod)
        self._rv = listed.metadata.resource_version

    def _record(self, kind: str, pod: Any) -> None:
        now = time.monotonic()
        with self.lock:
            rec = self.pods.get(pod.metadata.name)
            if rec is None:
                rec = self.pods[pod.metadata.name] = PodRecord(
                    pod.metadata.name, dict(pod.metadata.labels or {}), dict(pod.metadata.annotations or {}), created=now)
            rec.spec = pod.spec
            limits = (pod.spec.containers[0].resources.limits or {}) if pod.spec.containers[0].resources else {}
            rec.gpus = int(limits.get(GPU, 0))
            for cond in pod.status.conditions or []:
                if (cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable"
                        and cond.message not in rec.unschedulable):
                    rec.unschedulable.append(cond.message)
            if pod.spec.node_name and rec.node is None:
                rec.node, rec.scheduled = pod.spec.node_name, now
            phase = pod.status.phase
            if phase and (not rec.phases or rec.phases[-1] != phase):
                rec.phases.append(phase)
                if phase == "Running" and rec.running is None:
                    rec.running = now
                if phase in ("Succeeded", "Failed") and rec.finished is None:
                    rec.finished = now
            if kind == "DELETED":
                rec.deleted = now

    def of_run(self, dag_id: str, run_id: str) -> list[PodRecord]:
        """The pods of one DAG run (labels dag_id and run_id, as the operator sets them)."""
        from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value

        want = (make_safe_label_value(dag_id), make_safe_label_value(run_id))
        with self.lock:
            return sorted((r for r in self.pods.values() if (r.labels.get("dag_id"), r.labels.get("run_id")) == want),
                          key=lambda r: r.created)

    def wait_settled(self, timeout: float = 30) -> None:
        """Until no pod of the namespace is Pending/Running any more (deletions seen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = self.core.list_namespaced_pod(self.namespace).items
            if all(p.status.phase in ("Succeeded", "Failed") for p in live):
                return
            time.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        self._thread.join(timeout=35)


# --- Airflow -------------------------------------------------------------------------------------

def airflow_dag_folder() -> Path:
    """A migrated metadata DB (sqlite in the session's AIRFLOW_HOME, tests/conftest.py) and the
    DAG folder under test (dags/ with mlops_platform and .airflowignore, or MLOPS_DAG_FOLDER:
    `make test-cluster DAGS=<folder>`) copied to Airflow's dags_folder, so the `dags-folder`
    bundle dag.test() syncs holds them."""
    from airflow.configuration import conf
    from airflow.utils.db import initdb

    initdb()
    folder = Path(conf.get("core", "dags_folder"))
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(platform_env.dag_folder(), folder, ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    return folder


def ensure_pool(name: str, slots: int) -> None:
    """The pool the chart's pools Job creates (kwok runs no container: created here as it would)."""
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(name=name, slots=slots, description="GPU pool (chart pools Job)", include_deferred=False)


def for_kwok(dag: Any, retry_delay_seconds: float = 1) -> Any:
    """Operator settings for kwok nodes (no kubelet: no pod logs), a schedule timeout of 2 min and
    a short retry delay so a test sees the DAG's retries within seconds (retries count and trigger
    rules stay the DAG's)."""
    from datetime import timedelta

    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=retry_delay_seconds)
        task.retry_exponential_backoff = False
        if isinstance(task, KubernetesPodOperator) or (
                getattr(task, "operator_class", None) and issubclass(task.operator_class, KubernetesPodOperator)):
            # a pod that cannot be placed fails the task within 2 min instead of the platform's 1 h
            if hasattr(task, "partial_kwargs"):  # mapped: the partial's arguments
                task.partial_kwargs.update(get_logs=False, schedule_timeout_seconds=120)
            else:
                task.get_logs, task.schedule_timeout_seconds = False, 120
    return dag


class MlflowStandin:
    """Stand-in for mlops_platform.mlflow_rest (no MLflow server here): model versions by alias,
    runs of a sweep with a metric per profile, tags recorded."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.tags: dict[str, dict[str, str]] = {}

    def install(self, monkeypatch) -> None:
        import mlops_platform.mlflow_rest as rest

        monkeypatch.setattr(rest, "model_version_by_alias", self.model_version_by_alias)
        monkeypatch.setattr(rest, "search_runs", self.search_runs)
        monkeypatch.setattr(rest, "run_metrics", lambda run: run["metrics"])
        monkeypatch.setattr(rest, "run_tags", lambda run: run["tags"])
        monkeypatch.setattr(rest, "set_run_tag", self.set_run_tag)

    def model_version_by_alias(self, uri, name, alias):
        self.calls.append(("model_version_by_alias", name, alias))
        return {"name": name, "version": "3"}

    # gpu_sweep variants the runs stand for: name -> (profile, test_accuracy)
    sweep_runs = {"gpu-1": ("gpu-1", 0.90), "gpu-2": ("gpu-2", 0.93), "gpu-4": ("gpu-4", 0.97), "gpu-8": ("gpu-8", 0.95)}

    def search_runs(self, uri, experiment, filter_string):
        self.calls.append(("search_runs", experiment, filter_string))
        return [{"info": {"run_id": f"run-{n}"}, "metrics": {"test_accuracy": v, "test_f1_macro": v},
                 "tags": {"mlops.sweep_profile": p, "mlops.sweep_variant": n}}
                for n, (p, v) in self.sweep_runs.items()]

    def set_run_tag(self, uri, run_id, key, value):
        self.calls.append(("set_run_tag", run_id, key, value))
        self.tags.setdefault(run_id, {})[key] = value


def task_states(dr: Any, attribute: str = "state") -> dict[str, Any]:
    """{task_id or task_id[map_index]: state} of a DagRun (or another attribute: try_number)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dr.get_task_instances(session=session)
        value = (lambda ti: str(ti.state)) if attribute == "state" else (lambda ti: getattr(ti, attribute))
        return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): value(ti) for ti in tis}


# --- running a DAG and checking its pods (the cluster tier's pipeline modules) -------------------

SERIALIZE = client.ApiClient().sanitize_for_serialization


def run(bag, dag_id: str, conf: dict[str, Any], tweak=None, **kw) -> Any:
    dag = for_kwok(bag.dags[dag_id])
    if tweak:
        tweak(dag)
    started = time.monotonic()
    dr = dag.test(run_conf=conf, **kw)
    dr.took = time.monotonic() - started
    return dr


def pods_of(rec: PodRecorder, dag_id: str, dr: Any, observed: list[str], title: str) -> list[PodRecord]:
    rec.wait_settled()
    time.sleep(1)  # the last deletion event
    got = rec.of_run(dag_id, dr.run_id)
    observed.append(f"  {title}: run {dr.state} in {dr.took:.0f}s")
    observed.extend(f"    {r.describe()}" for r in got)
    return got


def as_dict(r: PodRecord) -> dict[str, Any]:
    return {"metadata": {"name": r.name, "labels": r.labels, "annotations": r.annotations},
            "spec": SERIALIZE(r.spec), "status": {"phase": r.phase}}


def profile_gpus(platform, profile: str) -> int:
    return int(platform.platform["profiles"][profile]["gpus"])


def check_pod(platform, r: PodRecord, dag_id: str, profile: str, workspace: str | None = None) -> None:
    pod = as_dict(r)
    checks.assert_identified(pod, dag_id, r.labels["task_id"])
    checks.assert_placed(pod, profile_gpus(platform, profile), GPU_NODES)
    checks.assert_platform_mounts(pod, platform.platform, workspace)
    assert r.labels.get("mlops.airflow.apache.org/profile") == profile, (r.name, r.labels)
    # from the profile's template: name prefix, security context, placement
    template = (platform.templates_dir / f"{profile}.yaml").read_text()
    assert f"name: mlops-task-{profile}" in template and r.name.startswith(f"mlops-task-{profile}-"), r.name
    assert r.spec.security_context.run_as_non_root is True, r.name


def states(dr) -> dict[str, str]:
    return {k: v.rsplit(".", 1)[-1].lower() for k, v in task_states(dr).items()}


def workspace_of(dag_id: str, dr) -> str:
    from mlops_platform.common import path_segment

    return f"{dag_id}/{path_segment(dr.run_id)}"
