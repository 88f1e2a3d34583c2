"""gpu_sweep's variants: the `variants` Param, variant files (`dags/sweeps/*.yaml`) and the plan.

A variant is one training of the sweep: a profile (its GPUs, pod template, pool slots; on Base
Command its instance type) plus hyperparameters (`model_type`, `seed` = the estimator's
`random_state`, estimator `params`). The same JSON schema checks a trigger's conf (Param) and
every variant file (when a run uses it: a bad file fails that run naming the file and the key).

Pool slots cannot follow a profile chosen at run time in Airflow 3.1 (dags/README.md, "GPU pool
slots"), so the sweep has one mapped `train_<profile>` task per profile, each with that
profile's GPUs as static `pool_slots`, mapped over only the variants of that profile
(`variants_<profile>`: an empty list skips the task). `plan()` resolves the variants into the
literal arguments and environment of each pod (values from XCom are not rendered as templates).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .common import path_segment, schema_problems
from .names import CONTROL_CHARACTERS
from .params import MODEL_TYPES

# Estimators with a random_state (knn has none: its variants could not differ by seed).
SEEDED_MODEL_TYPES = tuple(m for m in MODEL_TYPES if m != "knn")
VARIANT_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"
HYPERPARAM_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
HYPERPARAM_STRING_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
# `$` also matches before a final newline (Python re): control characters are refused separately.
_CONTROL = {"type": "string", "pattern": CONTROL_CHARACTERS}
MAX_VARIANTS = 16
MAX_SEED = 2**31 - 1
EXPERIMENT = "gpu-sweep"
SWEEPS_DIR = "sweeps"


class SweepConfigError(ValueError):
    """A variant list (conf or file) is invalid; the message names the key."""


def variant_schema(profiles: Sequence[str]) -> dict[str, Any]:
    """JSON schema of one variant (strict: unknown keys refused)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["profile"],
        "properties": {
            "name": {"type": "string", "pattern": VARIANT_NAME_PATTERN, "not": _CONTROL},
            "profile": {"type": "string", "enum": list(profiles)},
            "model_type": {"type": "string", "enum": list(SEEDED_MODEL_TYPES)},
            "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
            "params": {
                "type": "object",
                "maxProperties": 16,
                # the seed is the variant's `seed` (random_state)
                "propertyNames": {
                    "pattern": HYPERPARAM_NAME_PATTERN,
                    "not": {"anyOf": [{"const": "random_state"}, _CONTROL]},
                },
                "additionalProperties": {
                    "oneOf": [
                        {"type": "number"},
                        {"type": "boolean"},
                        {"type": "string", "pattern": HYPERPARAM_STRING_PATTERN, "not": _CONTROL},
                    ]
                },
            },
        },
    }


def variants_schema(profiles: Sequence[str]) -> dict[str, Any]:
    return {"type": "array", "items": variant_schema(profiles), "minItems": 1, "maxItems": MAX_VARIANTS}


def default_variants(profiles: Sequence[str]) -> list[dict[str, Any]]:
    """One variant per profile, each with its own seed."""
    return [{"profile": p, "seed": 1000 + 7 * i} for i, p in enumerate(profiles)]


def variants_param(profiles: Sequence[str], default: list[dict[str, Any]]) -> Any:
    from airflow.sdk import Param

    return Param(
        default,
        **variants_schema(profiles),
        title="Variants",
        description="Variants to train in parallel: {profile, name?, model_type?, seed?, params?}; "
        f"profiles: {', '.join(profiles)}; at most {MAX_VARIANTS}",
    )


def _error_key(path: Sequence[Any]) -> str:
    out = "variants"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_variants(variants: Any, profiles: Sequence[str], where: str) -> list[dict[str, Any]]:
    """Validate a variant list against the schema (+ unique names); errors name `where` and the key."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(variants_schema(profiles))
    shown = schema_problems(validator, variants, key=_error_key, limit=5)
    if shown:
        raise SweepConfigError(f"{where}: {shown}")
    names = [v["name"] for v in variants if "name" in v]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SweepConfigError(f"{where}: key 'variants[].name': {', '.join(dupes)} used more than once")
    return variants


def variant_files(directory: Path) -> list[str]:
    """The names of the variant files `<directory>/*.yaml` (the `variants_file` Param's choices)."""
    return sorted(p.name for p in directory.glob("*.yaml")) if directory.is_dir() else []


def load_variant_file(path: Path, profiles: Sequence[str]) -> list[dict[str, Any]]:
    """A variant file `variants: [...]`, validated; errors name the file and the key.

    Read when a run starts (the plan task), not at parse time: a bad file fails the runs that
    choose it, never the DAG."""
    import yaml

    where = f"{path.parent.name}/{path.name}"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SweepConfigError(f"{where}: not readable YAML ({exc})") from None
    if not isinstance(doc, Mapping) or set(doc) != {"variants"}:
        raise SweepConfigError(f"{where}: the file must hold exactly one key 'variants' (a list)")
    return check_variants(doc["variants"], profiles, where)


def resolve(variants: Sequence[Mapping[str, Any]], default_model_type: str) -> list[dict[str, Any]]:
    """Names, model types and seeds filled in (a name defaults to the profile, or `<profile>-<n>`
    when a profile has several variants; a seed to 1000 + 7 * position)."""
    counts: dict[str, int] = {}
    for v in variants:
        counts[v["profile"]] = counts.get(v["profile"], 0) + 1
    seen: dict[str, int] = {}
    out = []
    for i, v in enumerate(variants):
        profile = v["profile"]
        seen[profile] = seen.get(profile, 0) + 1
        name = v.get("name") or (profile if counts[profile] == 1 else f"{profile}-{seen[profile]}")
        out.append(
            {
                "name": name,
                "profile": profile,
                "model_type": v.get("model_type") or default_model_type,
                "seed": int(v.get("seed", 1000 + 7 * i)),
                "params": dict(v.get("params") or {}),
            }
        )
    names = [v["name"] for v in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SweepConfigError(f"variants: name(s) {', '.join(dupes)} given twice (set 'name' on each variant)")
    return out


def _param_arg(name: str, value: Any) -> str:
    return f"{name}={value if isinstance(value, str) else json.dumps(value)}"


def train_arguments(variant: Mapping[str, Any], workspace: str, dag_id: str, run_id: str) -> list[str]:
    """`mlops-trainer train ...` arguments (after the program) of one resolved variant."""
    seed = variant["seed"]
    args = [
        "train",
        "--workspace",
        workspace,
        "--model-type",
        variant["model_type"],
        "--experiment",
        EXPERIMENT,
        "--run-name",
        f"{path_segment(run_id)}-{variant['name']}",
        "--tag",
        f"airflow.dag_id={dag_id}",
        "--tag",
        f"airflow.run_id={run_id}",
        "--tag",
        f"mlops.sweep_profile={variant['profile']}",
        "--tag",
        f"mlops.sweep_variant={variant['name']}",
        "--tag",
        f"mlops.sweep_seed={seed}",
        "--param",
        f"random_state={seed}",
    ]
    for key, value in sorted(variant["params"].items()):
        args += ["--param", _param_arg(key, value)]
    return args


def plan(
    params: Mapping[str, Any],
    files_dir: Path,
    profiles: Sequence[str],
    *,
    dag_id: str,
    run_id: str,
    subpath_env: str,
    workspace: str,
) -> list[dict[str, Any]]:
    """The resolved variants of a run, each with what its pods need (literal values):
    `env_vars` (the variant's own workspace directory `<dag_id>/<run>/<name>`) and
    `train_arguments`. `params["variants_file"]` (a file of `files_dir`) replaces `variants`."""
    chosen = params.get("variants_file") or ""
    if chosen:
        names = variant_files(files_dir)
        if chosen not in names:
            raise SweepConfigError(f"key 'variants_file': {chosen!r} is not one of {', '.join(names) or '(none)'}")
        variants = load_variant_file(files_dir / chosen, profiles)
    else:
        variants = check_variants(params.get("variants"), profiles, "conf")
    out = []
    for v in resolve(variants, params.get("model_type") or SEEDED_MODEL_TYPES[0]):
        env = {subpath_env: f"{dag_id}/{path_segment(run_id)}/{v['name']}"}
        out.append({**v, "env_vars": env, "train_arguments": train_arguments(v, workspace, dag_id, run_id)})
    return out


def for_profile(planned: Sequence[Mapping[str, Any]], profile: str) -> list[dict[str, Any]]:
    """expand_kwargs entries of `train_<profile>`: only that profile's variants (may be empty)."""
    return [{"arguments": v["train_arguments"], "env_vars": v["env_vars"]} for v in planned if v["profile"] == profile]


def for_every_variant(planned: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """expand_kwargs entries of the per-variant CPU steps (prepare, evaluate): the workspace."""
    return [{"env_vars": v["env_vars"]} for v in planned]


def for_basecommand(
    planned: Sequence[Mapping[str, Any]], command: Sequence[str], dataset: str
) -> list[dict[str, Any]]:
    """expand_kwargs entries of the Base Command jobs: one per variant, on its profile's instance
    type, the variant given to the job as environment (MLOPS_SWEEP_VARIANT, MLOPS_SWEEP_SEED,
    MLOPS_MODEL_TYPE, MLOPS_SWEEP_PARAMS as JSON, MLOPS_DATASET, MLOPS_PROFILE)."""
    return [
        {
            "profile": v["profile"],
            "command": list(command),
            "env": {
                "MLOPS_SWEEP_VARIANT": v["name"],
                "MLOPS_SWEEP_SEED": str(v["seed"]),
                "MLOPS_MODEL_TYPE": v["model_type"],
                "MLOPS_SWEEP_PARAMS": json.dumps(v["params"], sort_keys=True),
                "MLOPS_DATASET": dataset,
                "MLOPS_PROFILE": v["profile"],
            },
        }
        for v in planned
    ]


def best_of_jobs(
    planned: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]], metric: str
) -> dict[str, Any]:
    """The best Base Command job by the `metric` of its `MLOPS_RESULT {json}` log line (results in
    the order of the variants)."""
    scored = []
    for v, res in zip(planned, results, strict=True):
        value = (res.get("result") or {}).get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            scored.append({"variant": v["name"], "profile": v["profile"], "job_id": res.get("job_id"), "value": value})
    if not scored:
        raise ValueError(f"no Base Command job of the sweep reported {metric!r} in an MLOPS_RESULT line")
    scored.sort(key=lambda r: r["value"], reverse=True)
    best = scored[0]
    return {
        "metric": metric,
        "best_variant": best["variant"],
        "best_profile": best["profile"],
        "best_job_id": best["job_id"],
        "best_value": best["value"],
        "all": scored,
    }
