"""DAG parse-time benchmark (`make bench-dags`): per DAG file and for the whole folder.

Measures as the Airflow 3.1 DAG processor parses: in a fresh child process per measurement,
Airflow imported once, the `airflow.*` modules a DAG file names pre-imported
(`[dag_processor] parsing_pre_import_modules`, default on), then what the processor's child
does for one file (`airflow.dag_processing.processor._parse_file`): a `BundleDagBag` of the file
with the DAG folder as bundle path and `load_op_links=False`, and every DAG serialized
(`SerializedDAG.to_dict`). Airflow runs with the product's configuration (no unit-test mode).

- cold: the first parse in a fresh interpreter (what one DAG processor child costs: includes
  importing mlops_platform and reading platform.json);
- warm: median of repeated parses in that interpreter (the file's own code only);
- net: each minus the same measurement for an empty DAG file, itself measured in fresh
  children of its own (the median of three), so both sides pay the same first-parse costs.

Input: the chart rendered with values/production.example.yaml (platform.json + pod templates),
as in the cluster. Target: net cold parse <= 50 ms per file. Prints a table; exits 1 when a
file misses the target (BENCH_STRICT=0 to only report).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
TARGET_MS = 50.0
REPEATS = int(os.environ.get("BENCH_REPEATS", "15"))

CHILD = r"""
import importlib, json, os, statistics, sys, time
from pathlib import Path
t0 = time.perf_counter()
import airflow, airflow.sdk
from airflow.models.dagbag import BundleDagBag
from airflow.serialization.serialized_objects import SerializedDAG
from airflow.utils.file import iter_airflow_imports
t_airflow = time.perf_counter() - t0
path, bundle, repeats = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
t1 = time.perf_counter()
targets = [path] if os.path.isfile(path) else [str(p) for p in sorted(Path(path).glob("*.py"))]
for target in targets:
    for mod in iter_airflow_imports(target):
        importlib.import_module(mod)
t_pre = time.perf_counter() - t1

def parse(p):
    s = time.perf_counter()
    bag = BundleDagBag(dag_folder=p, bundle_path=bundle, load_op_links=False)
    for dag in bag.dags.values():
        SerializedDAG.to_dict(dag)
    took = time.perf_counter() - s
    assert not bag.import_errors, bag.import_errors
    return took, len(bag.dags)

cold, n = parse(path)
warm = statistics.median(parse(path)[0] for _ in range(repeats))
print(json.dumps({"airflow_import": t_airflow, "pre_import": t_pre, "cold": cold, "warm": warm, "dags": n}))
"""

EMPTY_DAG = '''"""Baseline: an empty DAG (measures DagBag's own overhead)."""
import pendulum
from airflow.sdk import DAG

with DAG("bench_empty", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    pass
'''


def render_platform(root: Path) -> dict[str, str]:
    sys.path.insert(0, str(REPO))
    from tests.support.platform_env import render_environment

    env = render_environment("production.example", root)
    return {"MLOPS_PLATFORM_DIR": str(env.directory), "MLOPS_POD_TEMPLATES_DIR": str(env.templates_dir)}


def measure(target: Path, bundle: Path, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(target), str(bundle), str(REPEATS)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{target.name}: parse failed\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def baseline(empty: Path, env: dict[str, str]) -> dict[str, float]:
    """The empty DAG's cold and warm parse: the median of three fresh children."""
    runs = [measure(empty, empty.parent, env) for _ in range(3)]
    return {k: statistics.median(r[k] for r in runs) for k in ("cold", "warm")}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-dags-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            **render_platform(root),
            "AIRFLOW_HOME": str(root / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        (root / "empty").mkdir()
        empty = root / "empty" / "bench_empty.py"
        empty.write_text(EMPTY_DAG)
        base = baseline(empty, env)
        files = sorted(DAGS.glob("*.py"))
        print(
            f"DAG parse benchmark: {len(files)} files, {REPEATS} warm repeats, platform = production.example; "
            "as the DAG processor parses (BundleDagBag + serialization, fresh child per measurement, "
            "no unit-test mode)"
        )
        print(f"{'file':28} {'cold ms':>8} {'net':>7} {'warm ms':>8} {'net':>7}   (net = minus an empty DAG)")
        worst = 0.0
        first = None
        for f in files:
            r = measure(f, DAGS, env)
            first = first or r
            cold_net = (r["cold"] - base["cold"]) * 1000
            warm_net = (r["warm"] - base["warm"]) * 1000
            worst = max(worst, cold_net)
            print(
                f"{f.name:28} {r['cold'] * 1000:8.1f} {cold_net:7.1f} {r['warm'] * 1000:8.1f} {warm_net:7.1f}"
            )
        r = measure(DAGS, DAGS, env)
        print(
            f"{'whole folder (' + str(r['dags']) + ' DAGs)':28} {r['cold'] * 1000:8.1f} "
            f"{(r['cold'] - base['cold']) * 1000:7.1f} {r['warm'] * 1000:8.1f} "
            f"{(r['warm'] - base['warm']) * 1000:7.1f}"
        )
        print(
            f"context: interpreter + `import airflow, airflow.sdk` {first['airflow_import'] * 1000:.0f} ms, "
            f"pre-import of the files' airflow.* modules {first['pre_import'] * 1000:.0f} ms "
            f"(paid once by the DAG processor, not per parse)"
        )
        verdict = "OK" if worst <= TARGET_MS else "OVER TARGET"
        print(f"worst net cold parse per file: {worst:.1f} ms (target <= {TARGET_MS:.0f} ms): {verdict}")
        if worst > TARGET_MS and os.environ.get("BENCH_STRICT", "1") != "0":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
