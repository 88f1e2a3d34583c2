"""ml_serving: the champion model answers /invocations (kind: through the ingress controller and
its basic auth; realnode: through the model server's Service, no ingress controller there)."""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.kind import providers, support

MODEL = "iris"
SAMPLE = {
    "dataframe_split": {
        "columns": ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"],
        "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
    }
}


def test_ml_serving_answers(
    k8s: support.Kube,
    airflow: support.Airflow,
    platform: dict[str, Any],
    serving_auth: tuple[str, str],
    provider: providers.Provider,
) -> None:
    serving = platform["serving"]
    assert serving["enabled"], "values/kind.yaml must enable serving"
    started = time.monotonic()
    airflow.unpause("ml_serving")
    r = airflow.trigger("ml_serving", {"model_name": MODEL})
    assert r.status_code == 200, f"trigger ml_serving: HTTP {r.status_code} {r.text[:500]}"
    run_id = r.json()["dag_run_id"]
    state = airflow.wait_run("ml_serving", run_id, timeout=900)
    assert state == "success", (
        airflow.failure_report("ml_serving", run_id)
        + "\n"
        + k8s.diagnostics(serving.get("namespace") or support.NAMESPACE)
    )

    with provider.model_endpoint(MODEL, serving) as (base, headers, auth_enforced):

        def answered() -> Any:
            try:
                resp = requests.post(
                    f"{base}/invocations",
                    json=SAMPLE,
                    headers=headers,
                    auth=serving_auth,  # ingress basic auth (serving.auth.enabled)
                    timeout=15,
                )
            except requests.RequestException as exc:
                support.log(f"model endpoint: {exc}")
                return None
            return resp if resp.status_code == 200 else None

        resp = support.wait_for(f"POST /invocations {headers} via {base}", answered, timeout=300)
        predictions = resp.json()["predictions"]
        support.log(f"predictions: {predictions}")
        assert len(predictions) == 2
        provider.figures.append(f"ml_serving trigger -> first prediction: {time.monotonic() - started:.0f}s")
        if auth_enforced:
            # Without the credential the ingress refuses the model endpoint.
            anonymous = requests.post(f"{base}/invocations", json=SAMPLE, headers=headers, timeout=15)
            assert anonymous.status_code == 401, f"no credential: HTTP {anonymous.status_code}"
