"""pod_task(): a KubernetesPodOperator wired to the platform (profiles, registry, workspace, pool).

What comes from where (dags/README.md, "Where things come from"):
- the pod template of the profile (chart): security context, pull secret, volumes (workspace
  with `subPathExpr: $(MLOPS_WORKSPACE_SUBPATH)`, datasets), GPU placement (affinity,
  tolerations, node selector) and the profile's env (MLOPS_PROFILE, MLOPS_GPUS, HOME,
  MLFLOW_TRACKING_URI). `affinity`, `tolerations` and `image_pull_secrets` are not templated
  fields of the operator: they must come from the template.
- the task (this module): image (only from the configured registry prefix), command as an
  argument list, env (incl. MLOPS_WORKSPACE_SUBPATH = `<dag_id>/<sanitized run_id>`),
  resources, pool / pool_slots, retries, timeouts, labels.

Pool slots are decided by the scheduler from the serialized task when the task instance is
created, before any template is rendered: `pool_slots` is not a templated field, templating it
in a subclass would only change it after the slot accounting happened, `expand()` refuses it
("unmappable argument") and `expand_kwargs()` accepts it silently but the scheduler keeps the
partial value for every map index. So:
- a task with a fixed profile gets `pool_slots` = its GPUs exactly;
- a profile chosen at run time (`{{ params.profile }}`) either uses `profile_tasks()` (one task
  per profile behind a branch, exact slots) or reserves the maximum GPUs of the allowed
  profiles (`pool_slots` = max, never over-commits the pool, may under-use it).

Resources: by default a task sets none and the profile's resources from the template apply
(the chart decides sizes per cluster). Task resources only narrow the profile's: the operator
merges its container into the template's `base` container object by object (a task's `limits`
would replace the template's whole `limits`, `nvidia.com/gpu` included), so `resources_for()`
starts from the profile's requests and limits (read from its pod template) and lowers the ones
the task gives; a value above the profile's is refused, no limit is ever dropped, and the built
pod is checked against its template again (`MlopsPodOperator`).

Environment: the built pod's container has each variable once (Kubernetes keeps the last of two
entries, so a task's second MLOPS_WORKSPACE_SUBPATH would win), every name valid
(`names.ENV_NAME`, no control characters) and none of the task's own names reserved
(`names.reserved_env`), whatever the templates rendered.

Templates: the operator's template fields never read `conn`, `var`, `dag_run`, `conf` or
`macros` (mlops_platform.templates) unless the task opts in with `allow_template_names`.

Reattach: `reattach_on_restart` is deprecated in provider 10.25 (replaced by `durable` on
Airflow >= 3.3) and defaults to True on 3.1: a restarted worker re-attaches to the running pod
(found by its dag/task/run/try labels) instead of starting a second one. Not passed, to avoid
the deprecation warning at every parse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

from .common import PART_OF_LABEL, WORKSPACE_SUBPATH_TEMPLATE
from .config import PlatformConfig, Profile, load_platform
from .names import ENV_NAME, check_env_name, excerpt, reserved_env
from .templates import check_operator_fields

ENV_NAME_PATTERN = ENV_NAME.pattern
GPU_RESOURCE = "nvidia.com/gpu"
BASE_CONTAINER = "base"


class MlopsPodOperator(KubernetesPodOperator):
    """KubernetesPodOperator with the platform's guard rails at pod-build time.

    Adds templated `extra_env` (a mapping, or its JSON text, e.g. from `{{ params.env }}`) merged
    into the container env, templated `timeout_seconds` (the pod's activeDeadlineSeconds), and
    refuses to build a pod whose image is outside the registry prefix or whose command/args are
    not lists of strings.
    """

    template_fields = (*KubernetesPodOperator.template_fields, "extra_env", "timeout_seconds", "secret_env")

    def __init__(
        self,
        *,
        allowed_image_prefix: str,
        extra_env: Mapping[str, str] | str | None = None,
        timeout_seconds: int | str | None = None,
        secret_env: Mapping[str, str] | str | None = None,
        allowed_secret_refs: Sequence[str] = (),
        platform_env_names: Sequence[str] = (),
        allow_template_names: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        # Checked before the base class turns env_vars into V1EnvVar objects: the fields as given.
        check_operator_fields(
            str(kwargs.get("task_id")),
            {k: v for k, v in {**kwargs, "extra_env": extra_env, "secret_env": secret_env}.items()
             if k in self.template_fields},
            allow_template_names,
        )
        super().__init__(**kwargs)
        # The variables the platform itself sets in env_vars (the workspace sub-path): allowed
        # although reserved; every other reserved name is refused at pod build.
        self.platform_env_names = list(platform_env_names)
        self.allow_template_names = list(allow_template_names)
        self.allowed_image_prefix = allowed_image_prefix
        self.extra_env = extra_env
        self.timeout_seconds = timeout_seconds
        # ENV_NAME -> "<secret>/<key>": env from secretKeyRef, only references of the allow-list.
        self.secret_env = secret_env
        self.allowed_secret_refs = list(allowed_secret_refs)

    def _check(self) -> None:
        image = str(self.image or "")
        prefix = self.allowed_image_prefix
        if prefix and not image.startswith(prefix + "/"):
            raise ValueError(f"{self.task_id}: image {image!r} is not from the platform registry {prefix!r}/")
        if not prefix and "/" in image and re.match(r"^[^/]*[.:]|^localhost/", image):
            raise ValueError(f"{self.task_id}: image {image!r} names a registry; only bare names allowed")
        for field in ("cmds", "arguments"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{self.task_id}: {field} must be a list of strings, got {value!r}")

    def _merge_env(self) -> None:
        extra = self.extra_env
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        if not extra:
            return
        if not isinstance(extra, Mapping):
            raise ValueError(f"{self.task_id}: extra_env must be a mapping, got {type(extra).__name__}")
        env = list(self.env_vars or [])
        if isinstance(self.env_vars, dict):
            env = [k8s.V1EnvVar(name=k, value=str(v)) for k, v in self.env_vars.items()]
        taken = {e.name for e in env if isinstance(e, k8s.V1EnvVar)}
        for name, value in extra.items():
            check_env_name(name, f"{self.task_id}: extra_env variable")
            if name in taken:
                raise ValueError(f"{self.task_id}: environment variable {name!r} is already set")
            env.append(k8s.V1EnvVar(name=str(name), value=str(value)))
        self.env_vars = env

    def _merge_secret_env(self) -> None:
        refs = check_secret_env(self.task_id, self.secret_env, self.allowed_secret_refs)
        if not refs:
            return
        env = list(self.env_vars or [])
        if isinstance(self.env_vars, dict):
            env = [k8s.V1EnvVar(name=k, value=str(v)) for k, v in self.env_vars.items()]
        taken = {e.name for e in env if isinstance(e, k8s.V1EnvVar)}
        for name, ref in refs.items():
            if name in taken:
                raise ValueError(f"{self.task_id}: secret_env variable {name!r} is already set")
            secret, key = ref.split("/", 1)
            selector = k8s.V1SecretKeySelector(name=secret, key=key, optional=False)
            env.append(k8s.V1EnvVar(name=name, value_from=k8s.V1EnvVarSource(secret_key_ref=selector)))
        self.env_vars = env

    def _stringify(self) -> None:
        """Native rendering (render_template_as_native_obj) turns "8" into 8: env values and
        quantities must stay strings in the pod."""
        for env in self.env_vars or []:
            if isinstance(env, k8s.V1EnvVar) and env.value is not None and not isinstance(env.value, str):
                env.value = str(env.value)
        res = self.container_resources
        if isinstance(res, k8s.V1ResourceRequirements):
            for section in ("limits", "requests"):
                values = getattr(res, section)
                if values:
                    setattr(res, section, {k: str(v) for k, v in values.items()})

    def build_pod_request_obj(self, context: Any = None, *, dry_run: bool = False) -> k8s.V1Pod:
        self._check()
        self._merge_env()
        self._merge_secret_env()
        if isinstance(self.container_resources, dict):  # e.g. from expand_kwargs entries
            self.container_resources = k8s.V1ResourceRequirements(**self.container_resources)
        self._stringify()
        if self.timeout_seconds not in (None, ""):
            self.active_deadline_seconds = int(self.timeout_seconds)
        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        self._check_pod(pod)
        return pod

    def _check_pod(self, pod: k8s.V1Pod) -> None:
        """The pod as it will be created: each variable once, valid names, no reserved name set
        by the task, the profile's limits kept and not exceeded."""
        (container,) = [c for c in pod.spec.containers if c.name == BASE_CONTAINER] or pod.spec.containers[:1]
        env_vars = self.env_vars or []
        own = set(env_vars) if isinstance(env_vars, Mapping) else {e.name for e in env_vars if isinstance(e, k8s.V1EnvVar)}
        seen: set[str] = set()
        for entry in container.env or []:
            name = entry.name
            ENV_NAME.check(name, f"{self.task_id}: environment variable name")
            if name in seen:
                raise ValueError(
                    f"{self.task_id}: environment variable {name!r} is set twice in the pod (by its "
                    "profile's template or the platform, and by the task); Kubernetes would keep the last"
                )
            seen.add(name)
            if name in own and reserved_env(name) and name not in self.platform_env_names:
                check_env_name(name, f"{self.task_id}: environment variable")
        template = _template_resources(str(self.pod_template_file)) if self.pod_template_file else None
        if template is not None:
            res = container.resources
            _check_narrowing(
                f"{self.task_id}: pod",
                template,
                {"requests": dict(res.requests or {}) if res else {}, "limits": dict(res.limits or {}) if res else {}},
            )


def resources_for(
    profile: Profile,
    cpu: str | None = None,
    memory: str | None = None,
    cpu_limit: str | None = None,
    memory_limit: str | None = None,
) -> k8s.V1ResourceRequirements | None:
    """Task resources, or None to keep the profile's resources from the pod template.

    The task only narrows its profile: start from the template's requests and limits (every
    limit kept, `nvidia.com/gpu` included), set the task's values (`memory` is the request and,
    without `memory_limit`, the limit), refuse a value above the profile's.
    """
    if not any((cpu, memory, cpu_limit, memory_limit)):
        return None
    template = _template_resources(profile.pod_template_file)
    if template is None:
        raise ValueError(
            f"profile {profile.name!r}: its pod template {profile.pod_template_file} is not readable, "
            "so task resources cannot be checked against the profile's"
        )
    requests, limits = dict(template["requests"]), dict(template["limits"])
    for key, request, limit in (("cpu", cpu, cpu_limit), ("memory", memory, memory_limit or memory)):
        if limit:
            limits[key] = str(limit)
            if key in requests and _quantity(requests[key]) > _quantity(limit) and not request:
                requests[key] = str(limit)  # a narrower limit lowers the request with it
        if request:
            requests[key] = str(request)
    if profile.is_gpu:
        limits[GPU_RESOURCE] = str(profile.gpus)
    _check_narrowing(f"profile {profile.name!r}", template, {"requests": requests, "limits": limits})
    return k8s.V1ResourceRequirements(requests=requests or None, limits=limits or None)


def _quantity(value: Any) -> Any:
    from kubernetes.utils import parse_quantity

    return parse_quantity(str(value))


def _check_narrowing(where: str, template: Mapping[str, Mapping[str, Any]], got: Mapping[str, Mapping[str, Any]]) -> None:
    """`got` (requests, limits) is within the template's: no limit dropped or raised, no request
    above the profile's request (or its limit where it sets no request), requests within limits."""
    t_req, t_lim = template.get("requests") or {}, template.get("limits") or {}
    req, lim = got.get("requests") or {}, got.get("limits") or {}
    for key, bound in t_lim.items():
        if key not in lim:
            raise ValueError(f"{where}: the profile's {key} limit {bound} is dropped; task resources only narrow it")
        if _quantity(lim[key]) > _quantity(bound):
            raise ValueError(
                f"{where}: {key} limit {excerpt(lim[key])} is above the profile's {bound}; task resources only narrow it"
            )
    for key, value in req.items():
        bound = t_req.get(key, t_lim.get(key))
        if bound is not None and _quantity(value) > _quantity(bound):
            raise ValueError(
                f"{where}: {key} request {excerpt(value)} is above the profile's {bound}; task resources only narrow it"
            )
        if key in lim and _quantity(value) > _quantity(lim[key]):
            raise ValueError(f"{where}: {key} request {excerpt(value)} is above its limit {lim[key]}")


_TEMPLATE_CACHE: dict[tuple[str, float], dict[str, dict[str, str]] | None] = {}


def _template_resources(path: str) -> dict[str, dict[str, str]] | None:
    """requests/limits of the `base` container of a pod template file (None: not readable, or a
    templated path such as `.../{{ params.profile }}.yaml` before rendering)."""
    import os

    import yaml

    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    key = (path, mtime)
    if key not in _TEMPLATE_CACHE:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh)
            containers = doc["spec"]["containers"]
            (base,) = [c for c in containers if c.get("name") == BASE_CONTAINER] or containers[:1]
            res = base.get("resources") or {}
            _TEMPLATE_CACHE[key] = {
                "requests": {k: str(v) for k, v in (res.get("requests") or {}).items()},
                "limits": {k: str(v) for k, v in (res.get("limits") or {}).items()},
            }
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            _TEMPLATE_CACHE[key] = None
    return _TEMPLATE_CACHE[key]


def pod_task_kwargs(
    task_id: str,
    command: Sequence[str] | str,
    *,
    profile: str,
    cfg: PlatformConfig | None = None,
    image: str | None = None,
    env: Mapping[str, str] | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    cpu_limit: str | None = None,
    memory_limit: str | None = None,
    pool_slots: int | None = None,
    labels: Mapping[str, str] | None = None,
    startup_timeout_seconds: int | None = None,
    schedule_timeout_seconds: int | None = None,
    on_finish_action: str = "delete_succeeded_pod",
    **operator_kwargs: Any,
) -> dict[str, Any]:
    """The keyword arguments of `pod_task` (also usable with `MlopsPodOperator.partial`).

    `profile` is a profile name from platform.json, or a template such as
    `{{ params.profile }}`; then `pool_slots` is the largest GPU count of all profiles unless
    given (see the module docstring).
    """
    cfg = cfg or load_platform()
    cmds, args = _command(task_id, command)
    image = image or cfg.trainer_image
    if not cfg.image_allowed(image):
        raise ValueError(f"{task_id}: image {image!r} is not from the platform registry {cfg.image_prefix!r}")
    sizes = {"cpu": cpu, "memory": memory, "cpu_limit": cpu_limit, "memory_limit": memory_limit}
    if "{{" in profile:
        place = _run_time_profile(task_id, cfg, profile, pool_slots, sizes)
    else:
        place = _fixed_profile(cfg, profile, pool_slots, sizes)
    is_gpu = place.gpus > 0
    kwargs: dict[str, Any] = {
        "task_id": task_id,
        "allowed_image_prefix": cfg.image_prefix,
        "namespace": cfg.task_namespace,
        "service_account_name": cfg.service_account_name,
        "pod_template_file": place.template_file,
        "image": image,
        "cmds": cmds,
        "arguments": args,
        "env_vars": _task_env(task_id, cfg, env),
        "container_resources": place.resources,
        "labels": {**PART_OF_LABEL, "mlops.airflow.apache.org/profile": place.label, **dict(labels or {})},
        "pool": cfg.gpu_pool if is_gpu else "default_pool",
        "pool_slots": max(1, place.gpus),
        "on_finish_action": on_finish_action,
        "startup_timeout_seconds": startup_timeout_seconds or (900 if is_gpu else 300),
        # GPU headroom: how long the pod may wait Pending for GPUs (dags/README.md, "GPU headroom")
        "schedule_timeout_seconds": schedule_timeout_seconds or (cfg.gpu_max_wait_seconds if is_gpu else 600),
        "get_logs": True,
        "log_events_on_failure": True,
        "do_xcom_push": False,
        # reattach_on_restart is deprecated in provider 10.25; it defaults to True (durable) on
        # Airflow < 3.3: a restarted worker re-attaches to the running pod instead of starting a new one.
    }
    kwargs.update(operator_kwargs)
    kwargs["platform_env_names"] = [cfg.workspace_subpath_env]
    # Template fields: also checked here for MlopsPodOperator.partial() (its __init__ runs late).
    check_operator_fields(task_id, kwargs, kwargs.get("allow_template_names", ()))
    # Secret references: checked now when literal (parse time), else when the pod is built.
    kwargs["allowed_secret_refs"] = cfg.secret_refs
    check_secret_env(task_id, kwargs.get("secret_env"), cfg.secret_refs)
    return kwargs


def check_secret_env(task_id: str, secret_env: Any, allowed: Sequence[str]) -> dict[str, str]:
    """`secret_env` (ENV_NAME -> `<secret>/<key>`, or its JSON text) checked against the chart's
    allow-list (platform.json taskSecrets); a template is left for pod-build time."""
    if isinstance(secret_env, str):
        if "{{" in secret_env:
            return {}
        secret_env = json.loads(secret_env) if secret_env.strip() else {}
    if not secret_env:
        return {}
    if not isinstance(secret_env, Mapping):
        raise ValueError(f"{task_id}: secret_env must be a mapping ENV_NAME -> '<secret>/<key>'")
    for name, ref in secret_env.items():
        check_env_name(name, f"{task_id}: secret_env variable")
        if ref not in allowed:
            raise ValueError(
                f"{task_id}: secret_env {name!r} references {ref!r}, not in the chart's pipelines.secrets "
                f"allow-list ({', '.join(allowed) or 'empty'})"
            )
    return {str(k): str(v) for k, v in secret_env.items()}


def _command(task_id: str, command: Sequence[str] | str) -> tuple[Any, Any]:
    """(cmds, arguments) of the container: an argument list, or one template rendering to one."""
    if isinstance(command, str):
        # One template rendering to a list (e.g. "{{ params.command }}" with
        # render_template_as_native_obj=True); checked to be a list of strings at pod build.
        if not (command.strip().startswith("{{") and command.strip().endswith("}}")):
            raise ValueError(f"{task_id}: command must be a list of strings, not a shell string")
        return command, []
    command = list(command)
    if not command or not all(isinstance(c, str) for c in command):
        raise ValueError(f"{task_id}: command must be a non-empty list of strings")
    return command[:1], command[1:]


def _task_env(task_id: str, cfg: PlatformConfig, env: Mapping[str, str] | None) -> dict[str, str]:
    """The run's workspace sub-path plus the task's own variables (names checked)."""
    for name in env or {}:
        if name != cfg.workspace_subpath_env:  # a Python DAG may place its pod below the run's directory
            check_env_name(name, f"{task_id}: environment variable")
    return {cfg.workspace_subpath_env: WORKSPACE_SUBPATH_TEMPLATE, **dict(env or {})}


@dataclass(frozen=True)
class _Placement:
    """What a profile decides for a task: pod template, pool reservation, resources, label."""

    template_file: str
    gpus: int
    resources: k8s.V1ResourceRequirements | None
    label: str


def _fixed_profile(
    cfg: PlatformConfig, name: str, pool_slots: int | None, sizes: Mapping[str, str | None]
) -> _Placement:
    """A profile named in the DAG: its template, exactly its GPUs in the pool."""
    prof = cfg.profile(name)
    gpus = prof.gpus if pool_slots is None else pool_slots
    return _Placement(prof.pod_template_file, gpus, resources_for(prof, **sizes), prof.name)


def _run_time_profile(
    task_id: str, cfg: PlatformConfig, profile: str, pool_slots: int | None, sizes: Mapping[str, str | None]
) -> _Placement:
    """A profile chosen at run time (`{{ params.profile }}`): the template file and the GPU limit
    are rendered from the same expression; the pool reservation is the largest GPU count of all
    profiles."""
    expr = profile.strip()
    if not (expr.startswith("{{") and expr.endswith("}}")):
        raise ValueError(f"{task_id}: a templated profile must be one expression, got {profile!r}")
    expr = expr[2:-2].strip()
    resources = None
    if any(sizes.values()):
        resources = resources_for(cfg.profile(cfg.default_profile), **sizes)
        if cfg.max_gpus:
            gpu_map = json.dumps({p.name: str(p.gpus) for p in cfg.profiles.values()})
            limits = dict(resources.limits or {})
            limits[GPU_RESOURCE] = "{{ " + gpu_map + "[" + expr + "] }}"
            resources.limits = limits
    template_file = _template_dir(cfg) + "/" + profile + ".yaml"
    gpus = cfg.max_gpus if pool_slots is None else pool_slots
    return _Placement(template_file, gpus, resources, profile)


def _template_dir(cfg: PlatformConfig) -> str:
    first = cfg.profiles[cfg.default_profile].pod_template_file
    return first.rsplit("/", 1)[0]


def pod_task(task_id: str, command: Sequence[str] | str, *, profile: str, **kwargs: Any) -> MlopsPodOperator:
    """A KubernetesPodOperator for one step (see pod_task_kwargs for the arguments)."""
    return MlopsPodOperator(**pod_task_kwargs(task_id, command, profile=profile, **kwargs))


def profile_tasks(
    task_id: str,
    command: Sequence[str],
    *,
    profiles: Sequence[str],
    cfg: PlatformConfig | None = None,
    **kwargs: Any,
) -> dict[str, MlopsPodOperator]:
    """One task per profile (`<task_id>_<profile>`), each with its exact GPUs and pool slots.

    Put a branch in front (see `branch_on_profile`) so a run executes only the chosen one.
    """
    cfg = cfg or load_platform()
    return {
        name: pod_task(profile_task_id(task_id, name), command, profile=name, cfg=cfg, **kwargs)
        for name in profiles
    }


def profile_task_id(task_id: str, profile: str) -> str:
    return f"{task_id}_{profile.replace('-', '_')}"


def branch_on_profile(task_id: str, profiles: Sequence[str], branch_task_id: str = "choose_profile") -> Any:
    """A branch task that follows only `<task_id>_<params.profile>` (see profile_tasks)."""
    from airflow.sdk import task

    allowed = list(profiles)

    @task.branch(task_id=branch_task_id)
    def choose(params: dict[str, Any] | None = None) -> str:
        profile = (params or {}).get("profile")
        if profile not in allowed:  # params are validated already; keep the branch total anyway
            raise ValueError(f"profile {profile!r} is not one of {allowed}")
        return profile_task_id(task_id, profile)

    return choose()


def trainer_command(cfg: PlatformConfig, step: str, *args: str, workspace: str | None = None) -> list[str]:
    """`mlops-trainer <step> --workspace <run workspace> [args]` as an argument list."""
    return ["mlops-trainer", step, "--workspace", workspace or cfg.workspace_mount_path, *args]


def cleanup_command(cfg: PlatformConfig, below: str = "") -> list[str]:
    """Delete the run's own workspace contents (the pod only mounts its run sub-path).

    With `below`, only that top-level entry of the run workspace is removed (missing is fine).
    """
    root = cfg.workspace_mount_path.rstrip("/") or "/workspace"
    if not below:
        return ["find", root, "-mindepth", "1", "-delete"]
    if "/" in below or below in (".", "..") or not below:
        raise ValueError(f"cleanup below {below!r}: give one entry name of the run workspace")
    return [
        "find",
        root,
        "-mindepth",
        "1",
        "-maxdepth",
        "1",
        "-name",
        below,
        "-exec",
        "rm",
        "-rf",
        "--",
        "{}",
        "+",
    ]


def mapped_profile_task(
    task_id: str,
    command: Sequence[str],
    *,
    profiles: Sequence[str],
    cfg: PlatformConfig | None = None,
    run_profile: str | None = None,
    workspace_per_profile: bool = True,
    cpu: str | None = None,
    memory: str | None = None,
    profile_args: Mapping[str, Sequence[str]] | None = None,
    **kwargs: Any,
) -> Any:
    """Dynamic task mapping over `profiles` (one map index per profile, in that order).

    `profile_args` appends arguments to one profile's index only (e.g. its own seed).

    Each index gets the pod template, GPU limit, label and args (`__PROFILE__` replaced) of its
    profile; with `run_profile` every index runs on that profile instead (e.g. cpu
    preparation for each GPU variant). With `workspace_per_profile` the workspace sub-path is
    `<dag_id>/<run>/<profile>`, so variants never share files. Pool slots cannot be mapped in
    Airflow 3.1: the task reserves the largest GPU count among the profiles for every index.
    """
    cfg = cfg or load_platform()
    profiles = list(profiles)
    if not profiles:
        raise ValueError(f"{task_id}: no profiles to map over")
    runs_on = [run_profile or p for p in profiles]
    biggest = max(runs_on, key=lambda p: cfg.profile(p).gpus)
    base = pod_task_kwargs(task_id, command, profile=biggest, cfg=cfg, cpu=cpu, memory=memory, **kwargs)
    entries = []
    for name, run_on in zip(profiles, runs_on, strict=True):
        prof = cfg.profile(run_on)
        env = dict(base["env_vars"])
        if workspace_per_profile:
            env[cfg.workspace_subpath_env] = WORKSPACE_SUBPATH_TEMPLATE + "/" + name
        res = resources_for(prof, cpu, memory)
        entries.append(
            {
                "pod_template_file": prof.pod_template_file,
                # A plain mapping (serializable); MlopsPodOperator makes it V1ResourceRequirements.
                "container_resources": {"requests": res.requests, "limits": res.limits} if res else None,
                "labels": {**base["labels"], "mlops.airflow.apache.org/profile": prof.name},
                "env_vars": env,
                "arguments": [a.replace("__PROFILE__", name) for a in base["arguments"]]
                + list((profile_args or {}).get(name, ())),
            }
        )
    for key in entries[0]:
        base.pop(key, None)
    return MlopsPodOperator.partial(**base).expand_kwargs(entries)


def mapped_pod_task(
    task_id: str,
    command: Sequence[str],
    *,
    profile: str,
    entries: Any,
    mapped: Sequence[str] = ("env_vars",),
    cfg: PlatformConfig | None = None,
    **kwargs: Any,
) -> Any:
    """A pod task on one fixed `profile` (its GPUs = `pool_slots`, exactly), mapped over `entries`
    (an XComArg resolving to a list of operator kwargs, e.g. `{"env_vars": {...}}`; an empty list
    skips the task). The keys in `mapped` come from each entry instead of the partial (`command`
    then gives the program: with "arguments" mapped, pass just `[program]`).

    Values taken from XCom are not rendered as templates: entries hold literal values (see
    mlops_platform.sweep.plan), the partial's own fields (e.g. `{{ params.dataset }}`) are rendered.
    """
    base = pod_task_kwargs(task_id, command, profile=profile, cfg=cfg, **kwargs)
    for key in mapped:
        base.pop(key, None)
    return MlopsPodOperator.partial(**base).expand_kwargs(entries)


def cleanup_task(cfg: PlatformConfig, below: str = "", **kwargs: Any) -> MlopsPodOperator:
    """The run's `cleanup` pod (`cleanup_command(cfg, below)` on the default profile): runs whatever
    happened (`all_done`), one retry, marked with `as_cleanup()` so it never decides the run's state."""
    from .common import as_cleanup

    task = pod_task(
        "cleanup",
        cleanup_command(cfg, below),
        profile=cfg.default_profile,
        cfg=cfg,
        trigger_rule="all_done",
        retries=1,
        **kwargs,
    )
    return as_cleanup(task)
