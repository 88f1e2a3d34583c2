"""nfs_dataset_example: read a data set from the NFS volume mounted read-only at /data."""

from __future__ import annotations

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
from airflow.sdk import DAG
from mlops_platform.config import load_platform
from mlops_platform.params import relative_path_param
from mlops_platform.pods import pod_task

cfg = load_platform()

# Fixed program: the data set path arrives as an argument (argv[1]), never inside the code.
READ_DATASET = """
import hashlib, pathlib, sys
path = pathlib.Path(sys.argv[1])
if not path.exists():
    sys.exit(f"{path} does not exist on the dataset volume")
files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
total = 0
for f in files[:1000]:
    data = f.read_bytes()
    total += len(data)
    print(f"{f}\\t{len(data)}\\t{hashlib.sha256(data).hexdigest()}")
print(f"{len(files)} file(s), {total} bytes read")
"""

with DAG(
    **cfg.dag_args("nfs_dataset_example", "datasets", "example"),
    params={"path": relative_path_param("iris", "Path of a file or directory below the dataset volume")},
    doc_md=__doc__
    + f"""

The chart mounts the NFS dataset claim into every task pod at `{cfg.datasets_mount_path}`
(read-only{"" if cfg.datasets_enabled else "; disabled on this deployment: enable storage.nfs"}).
This task lists the files below `path` with their sizes and SHA-256. `path` is relative and
may not contain `..`.
""",
    **cfg.dag_defaults(),
) as dag:
    pod_task(
        "read_dataset",
        ["python", "-c", READ_DATASET, cfg.datasets_mount_path + "/{{ params.path }}"],
        profile=cfg.default_profile,
        cfg=cfg,
    )
