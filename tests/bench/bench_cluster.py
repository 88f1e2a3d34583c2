"""Benchmark of GPU task pods on the control plane (`make bench-cluster`): scheduling throughput,
time from task start to pod Running, GPU utilisation while work is queued, admitted pods waiting.

kwok nodes run no containers: the control plane of tests/support/cluster.py (its own state
directory, stopped at the end) gets --nodes extra simulated GPU nodes (8 nvidia.com/gpu each,
labelled and tainted as the GPU operator does), the platform is installed (values/production
.example.yaml, as tests/cluster/test_pipelines.py does) and a queue of --pods GPU task pods is
worked off. Each pod is built by the platform's own operator (mlops_platform.pods.pod_task ->
KubernetesPodOperator.build_pod_request_obj with the chart's pod template of its profile: gpu-1,
gpu-2, gpu-4, gpu-8 as gpu_sweep and run_job use them) and "runs" --run-seconds (kwok annotation
mlops.test/kwok-delay), then Succeeds.

Placement: `--scheduler gpu-packing` (the default; what the control-plane tier runs) bin-packs
GPUs as GPU clusters are run (NodeResourcesFit MostAllocated weighted on nvidia.com/gpu,
scripts/cluster-up): 1/2/4-GPU pods fill partly used nodes and whole nodes stay free for 8-GPU
pods. `--scheduler default` runs the kube-scheduler with its own defaults (LeastAllocated), as
a cluster whose administrator configured nothing: the small pods spread over every node and the
8-GPU pods wait for a whole one (fragmentation). Every figure is printed with the configuration
it was measured under.

Admission: the GPU pool's rule (a task takes its GPUs as slots; slots = the cluster's GPUs)
applied by this process with a slot counter; Airflow's scheduler is not in the loop (the
pipeline tests run Airflow itself, task by task), so "Airflow task throughput" here is the
rate at which admitted tasks complete (create pod -> Succeeded -> delete), not the scheduler's.
The admitted pods are created by --creators threads at once (8 by default; with one, measured
here, the creator and not the scheduler bounded the utilisation), so the placement rate it
prints is still bounded by those creators and the admission; the scheduler's own figure is the
latency from a pod's creation to its binding.

Method: every time comes from the pod watch's own events. GPU utilisation is time-weighted:
the GPU-seconds of running pods integrated over the window in which work was queued, divided by
the cluster's GPUs times that window (a per-iteration sample, the older method, is printed
beside it: it is biased upwards because a dip between two samples counts once). What can go
wrong is measured: admitted pods that waited for a node (> 5 s), time-weighted. A watch that
expires (410) is re-listed and counted, a broken stream is resumed from the last version seen
(nothing is missed), and a watch that fails otherwise stops the bench.

Figures, no assertions: the target (time-weighted GPU utilisation >= 90% while work is queued)
is printed with the result.

    .venv/bin/python -m tests.bench.bench_cluster --nodes 50 --pods 500 --run-seconds 20
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.support.paths import DAGS_DIR

PROFILES = {"gpu-1": 1, "gpu-2": 2, "gpu-4": 4, "gpu-8": 8}
TARGET_UTILISATION = 0.90


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))]


def time_weighted_utilisation(recs: list[dict], start: float, end: float, total_gpus: int) -> float:
    """GPU-seconds of the pods' running intervals inside [start, end], over total_gpus x (end - start)."""
    if end <= start or total_gpus <= 0:
        return float("nan")
    busy = 0.0
    for s in recs:
        if "running" not in s:
            continue
        lo, hi = max(start, s["running"]), min(end, s.get("finished", end))
        if hi > lo:
            busy += s["gpus"] * (hi - lo)
    return busy / (total_gpus * (end - start))


def add_gpu_nodes(cluster, count: int) -> list[str]:
    from kubernetes import client

    names = []
    for i in range(count):
        name = f"kwok-bench-gpu-{i}"
        res = {"cpu": "64", "memory": "512Gi", "pods": "110", "ephemeral-storage": "500Gi", "nvidia.com/gpu": "8"}
        body = client.V1Node(
            metadata=client.V1ObjectMeta(name=name, annotations={"kwok.x-k8s.io/node": "fake"}, labels={
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "type": "kwok", "node.kubernetes.io/instance-type": "p4d.24xlarge",
                "nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "8"}),
            spec=client.V1NodeSpec(taints=[client.V1Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")]),
            status=client.V1NodeStatus(allocatable=res, capacity=res))
        cluster.core.create_node(body)
        names.append(name)

    def ready():
        nodes = {n.metadata.name: n for n in cluster.core.list_node().items}
        return all(any(c.type == "Ready" and c.status == "True" for c in (nodes[n].status.conditions or []))
                   for n in names if n in nodes) and all(n in nodes for n in names)
    cluster.wait_for(f"{count} bench GPU nodes Ready", ready, timeout=120)
    return names


def build_pods(platform, count: int, run_seconds: float, seed: int) -> list[tuple[str, dict]]:
    """(profile, pod body) x count, built by the platform's operator from the chart's templates."""
    from kubernetes.client import ApiClient

    os.environ["MLOPS_PLATFORM_DIR"] = str(platform.directory)
    os.environ["MLOPS_POD_TEMPLATES_DIR"] = str(platform.templates_dir)
    if str(DAGS_DIR) not in sys.path:
        sys.path.append(str(DAGS_DIR))
    from mlops_platform.config import load_platform
    from mlops_platform.pods import pod_task, trainer_command

    cfg = load_platform()
    bodies = {}
    for profile in PROFILES:
        op = pod_task(f"train_{profile.replace('-', '_')}", trainer_command(cfg, "train"), profile=profile, cfg=cfg,
                      config_file=str(platform.kubeconfig), in_cluster=False)
        pod = ApiClient().sanitize_for_serialization(op.build_pod_request_obj())
        pod["metadata"].pop("name", None)
        bodies[profile] = pod
    rng = random.Random(seed)
    out = []
    for i in range(count):
        profile = rng.choice(list(PROFILES))
        pod = json.loads(json.dumps(bodies[profile]))
        pod["metadata"]["name"] = f"bench-{i:04d}-{profile}"
        pod["metadata"].setdefault("labels", {}).update({"mlops.test/bench": "true", "task_id": f"train_{profile}"})
        pod["metadata"].setdefault("annotations", {})["mlops.test/kwok-delay"] = f"{int(run_seconds * 1000)}ms"
        for env in pod["spec"]["containers"][0].get("env") or []:
            if env["name"] == cfg.workspace_subpath_env:
                env["value"] = f"bench/{i:04d}"
        out.append((profile, pod))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=50, help="simulated GPU nodes added (8 GPUs each)")
    ap.add_argument("--pods", type=int, default=500, help="GPU task pods in the queue")
    ap.add_argument("--run-seconds", type=float, default=20, help="how long each pod 'runs' (kwok)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--creators", type=int, default=8, help="threads creating the admitted pods concurrently")
    ap.add_argument("--scheduler", choices=("gpu-packing", "default"), default="gpu-packing",
                    help="the tier's GPU bin-packing (default) or the kube-scheduler's own defaults")
    args = ap.parse_args(argv)
    os.environ["CLUSTER_SCHEDULER"] = args.scheduler
    if args.nodes < 1 or args.pods < 1 or args.creators < 1:
        ap.error("--nodes, --pods and --creators must be positive")

    import urllib3
    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    from tests.cluster import pipelines as pl
    from tests.support.cluster import start_cluster

    started = time.monotonic()
    cluster = start_cluster()
    try:
        print(f"control plane up in {cluster.up_seconds:.1f}s ({cluster.state_dir})")
        platform = pl.install_platform(cluster, Path(tempfile.mkdtemp(prefix="bench-cluster-")), "bench", "bench-jobs")
        print(f"platform installed in {platform.install_seconds:.1f}s")
        nodes = add_gpu_nodes(cluster, args.nodes)
        gpu_nodes = set(nodes) | pl.GPU_NODES
        total_gpus = 8 * len(gpu_nodes)
        queue = collections.deque(build_pods(platform, args.pods, args.run_seconds, args.seed))
        print(f"{len(gpu_nodes)} GPU nodes, {total_gpus} GPUs (= GPU pool slots); {len(queue)} pods queued "
              f"({dict(collections.Counter(p for p, _ in queue))}), each runs {args.run_seconds:g}s")

        ns = platform.tasks_namespace
        lock = threading.Lock()
        slots = {"free": total_gpus}
        state: dict[str, dict] = {}
        done = threading.Event()
        watch_errors: list[BaseException] = []
        relists = {"count": 0, "resumed": 0}

        def record(pod, now: float) -> None:
            with lock:
                s = state.get(pod.metadata.name)
                if s is None:
                    return
                if pod.spec.node_name and "bound" not in s:
                    s["bound"], s["node"] = now, pod.spec.node_name
                if pod.status.phase in ("Running", "Succeeded", "Failed") and "running" not in s:
                    s["running"] = now
                if pod.status.phase in ("Succeeded", "Failed") and "finished" not in s:
                    s["finished"], s["phase"] = now, pod.status.phase

        def watcher():
            try:
                w = watch.Watch()
                rv = cluster.core.list_namespaced_pod(ns).metadata.resource_version
                while not done.is_set():
                    try:
                        for ev in w.stream(cluster.core.list_namespaced_pod, ns, resource_version=rv,
                                           timeout_seconds=10, label_selector="mlops.test/bench=true"):
                            rv = ev["object"].metadata.resource_version
                            record(ev["object"], time.monotonic())
                            if done.is_set():
                                break
                    except urllib3.exceptions.HTTPError:
                        # the stream broke: resume from the last version seen (the API server replays)
                        relists["resumed"] += 1
                        continue
                    except ApiException as exc:
                        if exc.status != 410:
                            raise
                        # the watch expired: re-list (states seen late get the re-list's time)
                        relists["count"] += 1
                        listed = cluster.core.list_namespaced_pod(ns, label_selector="mlops.test/bench=true")
                        for pod in listed.items:
                            record(pod, time.monotonic())
                        rv = listed.metadata.resource_version
            except BaseException as exc:  # noqa: BLE001 (reported by the main loop, which stops)
                watch_errors.append(exc)

        watch_thread = threading.Thread(target=watcher, daemon=True)
        watch_thread.start()
        time.sleep(0.5)

        creators = concurrent.futures.ThreadPoolExecutor(max_workers=args.creators)
        samples: list[float] = []
        delete_errors: list[str] = []
        t0 = time.monotonic()
        queue_empty_at = None
        while True:
            now = time.monotonic()
            if watch_errors or not watch_thread.is_alive():
                raise SystemExit(f"bench-cluster: the pod watch failed, figures would be wrong: {watch_errors!r}")
            with lock:
                finished = [n for n, s in state.items() if "finished" in s and not s.get("released")]
                for n in finished:
                    state[n]["released"] = True
                    slots["free"] += state[n]["gpus"]
                running_gpus = sum(s["gpus"] for s in state.values() if "running" in s and "finished" not in s)
            for n in finished:
                try:
                    cluster.core.delete_namespaced_pod(n, ns, grace_period_seconds=0)
                except ApiException as exc:
                    if exc.status != 404:
                        delete_errors.append(f"{n}: {exc.status} {exc.reason}")
            if queue:
                samples.append(running_gpus / total_gpus)
            # admit by the pool rule: a task takes its GPUs as slots, FIFO (head of line waits);
            # the admitted pods are created concurrently (--creators), as Airflow's workers would
            admitted = []
            while queue and PROFILES[queue[0][0]] <= slots["free"]:
                profile, body = queue.popleft()
                slots["free"] -= PROFILES[profile]
                with lock:
                    state[body["metadata"]["name"]] = {"gpus": PROFILES[profile], "start": time.monotonic()}
                admitted.append(body)
            list(creators.map(lambda b: cluster.core.create_namespaced_pod(ns, b), admitted))
            if not queue and queue_empty_at is None:
                queue_empty_at = time.monotonic()
            with lock:
                all_done = not queue and all("finished" in s for s in state.values()) and len(state) == args.pods
            if all_done or now - t0 > 3600:
                break
            time.sleep(0.2)
        done.set()
        creators.shutdown()
        wall = time.monotonic() - t0
        window_end = queue_empty_at or time.monotonic()

        with lock:
            recs = list(state.values())
        bound = sorted(s["bound"] for s in recs if "bound" in s)
        to_running = [s["running"] - s["start"] for s in recs if "running" in s]
        to_bound = [s["bound"] - s["start"] for s in recs if "bound" in s]
        ok = sum(1 for s in recs if s.get("phase") == "Succeeded")
        gpu_seconds = sum(s["gpus"] * (s["finished"] - s["running"]) for s in recs if "running" in s and "finished" in s)
        ideal = gpu_seconds / total_gpus
        util = time_weighted_utilisation(recs, t0, window_end, total_gpus)
        util_sampled = statistics.mean(samples) if samples else float("nan")
        waited = [s for s in recs if s.get("bound", window_end) - s["start"] > 5]
        wait_pod_seconds = sum(min(s.get("bound", window_end), window_end) - s["start"] for s in waited)
        burst = [b for b in bound if b - bound[0] <= 10] if bound else []
        print(f"\n=== bench-cluster (scheduler: {args.scheduler}) ===")
        print(f"pods: {len(recs)} created, {ok} Succeeded, {len(recs) - ok} other; wall {wall:.1f}s "
              f"(ideal packing {ideal:.1f}s = GPU-seconds / GPUs)")
        print(f"placement rate ({args.creators} creator threads and the pool's admission bound it, not the scheduler): "
              f"{len(bound) / max(1e-9, bound[-1] - bound[0]):.1f} pods bound/s overall; "
              f"{len(burst) / 10:.1f} pods/s in the first 10 s")
        print(f"scheduler latency (pod created -> bound): p50 {percentile(to_bound, 50):.2f}s, "
              f"p99 {percentile(to_bound, 99):.2f}s")
        print(f"task throughput (admitted task -> pod Succeeded -> slot released): {ok / wall:.2f} tasks/s")
        print(f"task start (pod created) -> Running: p50 {percentile(to_running, 50):.2f}s, "
              f"p99 {percentile(to_running, 99):.2f}s, max {max(to_running):.2f}s")
        print(f"GPU utilisation while work was queued ({window_end - t0:.1f}s): {util:.1%} time-weighted "
              f"(target >= {TARGET_UTILISATION:.0%}); {util_sampled:.1%} sampled once per loop "
              f"({len(samples)} samples, the older method: biased upwards)")
        print(f"admitted pods that waited > 5 s for a node: {len(waited)} ({wait_pod_seconds:.1f} pod-seconds in "
              f"the queued window; {wait_pod_seconds / max(1e-9, window_end - t0):.2f} pods waiting on average)")
        print(f"watch re-lists after expiry: {relists['count']} (resumed after a broken stream: {relists['resumed']}); "
              f"pod deletions that failed: {len(delete_errors)}"
              + (f" ({delete_errors[:3]})" if delete_errors else ""))
        met = util >= TARGET_UTILISATION
        print(f"target {'met' if met else 'NOT met'}; total bench time {time.monotonic() - started:.0f}s")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
