"""MLflow tracking server templates: Deployment, Service, Ingress, PVC, ServiceAccount, NetworkPolicy."""

from __future__ import annotations

import fnmatch
import json

import pytest
import yaml

from tests.support import paths
from tests.support.helm import HelmError, find, render_chart, template_folder
from tests.support.k8s import pod_specs, restricted_violations
from tests.support.merge import deep_merge as merge
from tests.support.overlays import with_overlays

REL, NS = "mlops", "mlops"
NAME = "mlops-airflow-mlops-mlflow"
SVC_FQDN = f"{NAME}.{NS}.svc.cluster.local"
INGRESS = {"mlflow": {"ingress": {"enabled": True, "host": "mlflow.example.com", "className": "nginx"}}}
POSTGRES = {"mlflow": {"backendStore": {"type": "existingSecret", "existingSecret": "mlflow-db"}}}
# sqlite is a development setup, refused unless acknowledged (the default is the Secret mlflow-db)
SQLITE = {"mlflow": {"backendStore": {"type": "sqlite", "sqlite": {"developmentOnly": True}}}}


def only(objects):
    """The objects of templates/mlflow/ among `objects` (rendered once for several checks)."""
    return [o for o in objects if template_folder(o) == "mlflow"]


def render(values: dict | None = None, **kw):
    return render_chart(values=values, release=REL, namespace=NS, template_folders=["mlflow"], **kw)


def container(objects) -> dict:
    (dep,) = find(objects, "Deployment", NAME)
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict) -> dict:
    return {e["name"]: e for e in c.get("env", [])}


def test_defaults_render_every_object_restricted() -> None:
    objects = render()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["Deployment", "NetworkPolicy", "PersistentVolumeClaim", "Service", "ServiceAccount"]
    for obj in objects:
        for where, spec in pod_specs(obj):
            assert restricted_violations(spec, f"{obj['kind']} {where}") == []
    c = container(objects)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/tmp", "/mlflow"} <= mounts
    (dep,) = find(objects, "Deployment")
    assert dep["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == NAME


def test_command_serves_artifacts_on_the_service_port() -> None:
    c = container(render({"mlflow": {"service": {"port": 5555}, "workers": 3}}))
    cmd = c["command"]
    assert cmd[:2] == ["mlflow", "server"]
    assert "--serve-artifacts" in cmd
    assert cmd[cmd.index("--port") + 1] == "5555" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--workers") + 1] == "3"
    assert cmd[cmd.index("--artifacts-destination") + 1] == "/mlflow/artifacts"
    assert c["ports"][0]["containerPort"] == 5555
    assert not any("sqlite" in a or "postgresql" in a for a in cmd), "no store URI on the command line"
    env = env_of(c)
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    on = env_of(container(render({"mlflow": {"jobExecution": {"enabled": True}}})))
    assert on["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "true"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"


def test_service_matches_the_tracking_uri_of_platform_json() -> None:
    objects = render_chart(
        values={"mlflow": {"service": {"port": 5555}}},
        release=REL,
        namespace=NS,
        show_only=["templates/mlflow/mlflow-service.yaml", "templates/platform/platform-configmap.yaml"],
    )
    (svc,) = find(objects, "Service")
    (cm,) = find(objects, "ConfigMap")
    assert svc["metadata"]["name"] == NAME
    assert svc["spec"]["ports"][0]["port"] == 5555
    uri = json.loads(cm["data"]["platform.json"])["mlflow"]["trackingUri"]
    assert uri == f"http://{SVC_FQDN}:5555"
    (dep,) = find(render(), "Deployment")
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def test_acknowledged_sqlite_is_on_the_kept_volume() -> None:
    objects = render(SQLITE)
    env = env_of(container(objects))
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"] == "sqlite:////mlflow/mlflow.db"
    (pvc,) = find(objects, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == NAME
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    (dep,) = find(objects, "Deployment")
    assert dep["spec"]["strategy"]["type"] == "Recreate"


def test_existing_secret_backend_store() -> None:
    env = env_of(container(render(POSTGRES)))
    ref = env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "mlflow-db", "key": "uri"}


def test_dev_database_backend_store() -> None:
    values = {
        "devDatabase": {"enabled": True, "auth": {"existingSecret": "dev-db"}},
        "airflow": {"postgresql": {"enabled": False}, "data": {"metadataSecretName": "meta"}},
        "mlflow": {"backendStore": {"type": "devDatabase"}},
    }
    env_list = container(render(values))["env"]
    names = [e["name"] for e in env_list]
    # $(MLOPS_DEV_DATABASE_PASSWORD) is expanded only when defined before the URI
    assert names.index("MLOPS_DEV_DATABASE_PASSWORD") < names.index("MLFLOW_BACKEND_STORE_URI")
    env = env_of(container(render(values)))
    assert env["MLOPS_DEV_DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "dev-db",
        "key": "password",
    }
    # the driver the image ships (psycopg2): SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"] == (
        "postgresql+psycopg2://airflow:$(MLOPS_DEV_DATABASE_PASSWORD)"
        "@mlops-airflow-mlops-dev-database.mlops.svc.cluster.local:5432/mlflow"
    )


def test_s3_artifacts_need_no_volume() -> None:
    values = merge(
        POSTGRES,
        {
            "mlflow": {
                "artifacts": {
                    "type": "s3",
                    "s3": {
                        "bucket": "ml-art",
                        "path": "/prod/",
                        "endpointUrl": "https://minio.example.com",
                        "existingSecret": "s3-creds",
                    },
                }
            }
        },
    )
    objects = render(values)
    assert find(objects, "PersistentVolumeClaim") == []
    c = container(objects)
    assert c["command"][c["command"].index("--artifacts-destination") + 1] == "s3://ml-art/prod"
    env = env_of(c)
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "https://minio.example.com"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-creds",
        "key": "AWS_ACCESS_KEY_ID",
    }
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp"}
    (dep,) = find(objects, "Deployment")
    assert "strategy" not in dep["spec"]


def allowed(hosts_env: str, host: str) -> bool:
    """MLflow 3.17's rule (mlflow/server/security_utils.py is_allowed_host_header)."""
    patterns = hosts_env.split(",")
    return any(fnmatch.fnmatch(host, p) if "*" in p else host == p for p in patterns)


def test_allowed_hosts_cover_ingress_and_service_names() -> None:
    env = env_of(container(render(merge(INGRESS, {"mlflow": {"allowedHosts": ["mlflow.internal"]}}))))
    hosts = env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"]
    for host in (
        "mlflow.example.com",
        "mlflow.example.com:443",
        NAME,
        f"{NAME}:5000",
        f"{NAME}.{NS}:5000",
        f"{NAME}.{NS}.svc:5000",
        f"{SVC_FQDN}:5000",
        "localhost:5000",
        "127.0.0.1:5000",
        "10.244.1.7:5000",
        "172.18.0.2:5000",
        "100.64.0.5:5000",  # the shared space 100.64.0.0/10: pod networks of some managed clusters
        "100.127.255.1:5000",
        "[fd12:3456::7]:5000",  # IPv6 unique-local, as a Host header carries it
        "[fc00::1]",
        "[::1]:5000",
        "mlflow.internal",
    ):
        assert allowed(hosts, host), host
    for host in ("evil.example.net", "mlflow.example.com.evil.net", "172.32.0.1:5000", "8.8.8.8",
                 "100.128.0.1:5000", "100.63.255.1:5000", "[2001:db8::1]:5000", "fd00.evil.net"):
        assert not allowed(hosts, host), host
    assert env["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"]["value"] == "http://mlflow.example.com"


def test_cors_origin_follows_tls() -> None:
    values = merge(INGRESS, {"mlflow": {"ingress": {"tls": {"enabled": True}}}})
    env = env_of(container(render(values)))
    assert env["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"]["value"] == "https://mlflow.example.com"


def test_no_ingress_no_cors_env() -> None:
    env = env_of(container(render()))
    assert "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS" not in env
    assert "mlflow.example.com" not in env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"]


def test_ingress_host_class_and_tls() -> None:
    values = merge(INGRESS, {"mlflow": {"ingress": {"tls": {"enabled": True}, "annotations": {"a": "b"}}}})
    (ing,) = find(render(values), "Ingress")
    assert ing["spec"]["ingressClassName"] == "nginx"
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "mlflow.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": NAME, "port": {"name": "http"}}
    assert ing["spec"]["tls"] == [{"hosts": ["mlflow.example.com"], "secretName": f"{NAME}-tls"}]
    assert ing["metadata"]["annotations"] == {"a": "b"}
    assert find(render(), "Ingress") == []


def peers(objects) -> list[dict]:
    (np,) = find(objects, "NetworkPolicy")
    (rule,) = np["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    return rule["from"]


def test_network_policy_selects_the_server_and_admits_only_known_peers() -> None:
    objects = render()
    (np,) = find(objects, "NetworkPolicy")
    (dep,) = find(objects, "Deployment")
    assert (
        np["spec"]["podSelector"]["matchLabels"].items()
        <= dep["spec"]["template"]["metadata"]["labels"].items()
    )
    assert np["spec"]["policyTypes"] == ["Ingress"]
    got = peers(objects)
    ns = {"matchLabels": {"kubernetes.io/metadata.name": NS}}
    assert got == [
        {"namespaceSelector": ns, "podSelector": {"matchLabels": {"tier": "airflow", "release": REL}}},
        {
            "namespaceSelector": ns,
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/component": "task",
                    "mlops.airflow.apache.org/release": REL,
                    "kubernetes_pod_operator": "True",
                }
            },
        },
    ]
    for peer in got:
        assert peer["namespaceSelector"] and peer["podSelector"]["matchLabels"], "no peer may be open-ended"


def test_network_policy_task_peer_in_tasks_namespace_and_extra_peers() -> None:
    values = merge(
        INGRESS,
        {
            "tasks": {"namespace": "ml-jobs"},
            "serving": {"enabled": True, "domain": "models.example.com", "namespace": "ml-serving"},
            "mlflow": {"networkPolicy": {"extraFrom": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}},
        },
    )
    got = peers(render(values))
    by_ns = {json.dumps(p.get("namespaceSelector"), sort_keys=True): p for p in got}
    task = by_ns[json.dumps({"matchLabels": {"kubernetes.io/metadata.name": "ml-jobs"}}, sort_keys=True)]
    assert task["podSelector"]["matchLabels"]["kubernetes_pod_operator"] == "True"
    serving = by_ns[
        json.dumps({"matchLabels": {"kubernetes.io/metadata.name": "ml-serving"}}, sort_keys=True)
    ]
    assert serving["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "model-serving"
    ingress = by_ns[
        json.dumps({"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}, sort_keys=True)
    ]
    assert "podSelector" not in ingress
    assert {"ipBlock": {"cidr": "10.1.0.0/16"}} in got


def test_pod_templates_carry_the_labels_the_network_policy_admits() -> None:
    """Contract with the pod templates: every profile's pod matches the task peer (the
    KubernetesPodOperator adds kubernetes_pod_operator=True itself)."""
    objects = render_chart(
        release=REL,
        namespace=NS,
        show_only=[
            "templates/pod-templates/pod-templates-configmap.yaml",
            "templates/mlflow/mlflow-networkpolicy.yaml",
        ],
    )
    (cm,) = find(objects, "ConfigMap")
    task_peer = peers(objects)[1]["podSelector"]["matchLabels"]
    expected = {k: v for k, v in task_peer.items() if k != "kubernetes_pod_operator"}
    assert cm["data"], "no pod template rendered"
    for key, text in cm["data"].items():
        labels = yaml.safe_load(text)["metadata"]["labels"]
        assert expected.items() <= labels.items(), f"{key}: labels {labels} do not match {expected}"


def test_network_policy_can_be_disabled() -> None:
    assert find(render({"mlflow": {"networkPolicy": {"enabled": False}}}), "NetworkPolicy") == []


def test_existing_claim_and_no_service_account() -> None:
    objects = render(
        {"mlflow": {"persistence": {"existingClaim": "old-mlflow"}, "serviceAccount": {"create": False}}}
    )
    assert find(objects, "PersistentVolumeClaim") == [] and find(objects, "ServiceAccount") == []
    (dep,) = find(objects, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "old-mlflow"}} in spec["volumes"]
    assert spec["serviceAccountName"] == "default"


def test_image_follows_prefix_and_pull_secret() -> None:
    values = {
        "images": {"prefix": "nexus.example.com/mlops"},
        "registry": {"enabled": True, "server": "nexus.example.com", "existingSecret": "pull"},
        "airflow": {"imagePullSecrets": ["pull"]},
        "mlflow": {"image": {"tag": "1.2.3"}},
    }
    (dep,) = find(render(values), "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == "nexus.example.com/mlops/mlflow:1.2.3"
    assert spec["imagePullSecrets"] == [{"name": "pull"}]


def test_disabled_renders_nothing_and_uses_the_external_uri() -> None:
    values = {"mlflow": {"enabled": False, "externalTrackingUri": "http://mlflow.shared:5000"}}
    assert render(values) == []
    (cm,) = find(
        render_chart(
            values=values, release=REL, namespace=NS, show_only=["templates/platform/platform-configmap.yaml"]
        ),
        "ConfigMap",
    )
    assert json.loads(cm["data"]["platform.json"])["mlflow"]["trackingUri"] == "http://mlflow.shared:5000"


@pytest.mark.parametrize(
    "values,message",
    [
        (
            {"mlflow": {"backendStore": {"type": "existingSecret", "existingSecret": ""}}},
            "mlflow.backendStore.existingSecret is required",
        ),
        (
            {"mlflow": {"backendStore": {"type": "sqlite"}}},
            "it is refused unless mlflow.backendStore.sqlite.developmentOnly=true",
        ),
        ({"mlflow": {"backendStore": {"type": "devDatabase"}}}, "needs devDatabase.enabled=true"),
        (merge(SQLITE, {"mlflow": {"replicas": 2}}), "sqlite (mlflow.backendStore.type=sqlite) allows only 1 replica"),
        (merge(POSTGRES, {"mlflow": {"replicas": 2}}), "cannot share the ReadWriteOnce volume"),
        ({"mlflow": {"ingress": {"enabled": True}}}, "mlflow.ingress.host is required"),
        (
            merge(
                INGRESS,
                {
                    "mlflow": {
                        "networkPolicy": {"ingressController": {"namespaceSelector": {"matchLabels": None}}}
                    }
                },
            ),
            "an empty selector would admit every namespace",
        ),
        (
            merge(POSTGRES, {"mlflow": {"artifacts": {"type": "s3"}}}),
            "mlflow.artifacts.type=s3 needs mlflow.artifacts.s3.bucket",
        ),
        ({"mlflow": {"enabled": False}}, "mlflow.externalTrackingUri is required"),
        ({"mlflow": {"backendStore": {"type": "mysql"}}}, "mlflow.backendStore.type"),
        ({"mlflow": {"image": {"tag": "latest"}}}, 'mlflow.image.tag="latest" is refused. Allowed: a fixed tag'),
        ({"mlflow": {"ingress": {"enabled": True, "host": "Bad_Host"}}}, "mlflow.ingress.host"),
        ({"mlflow": {"unknown": 1}}, "unknown"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_values_fail_with_a_message(values: dict, message: str) -> None:
    with pytest.raises(HelmError) as excinfo:
        render_chart(values=values, release=REL, namespace=NS)
    assert message in str(excinfo.value)


@pytest.mark.parametrize("values_file", ["kind.yaml", "production.example.yaml"])
def test_environment_overlays(values_file: str) -> None:
    objects = render(values_files=with_overlays(paths.VALUES_DIR / values_file))
    c = container(objects)
    env = env_of(c)
    assert (
        env["MLFLOW_BACKEND_STORE_URI"].get("valueFrom")
        or "postgresql+psycopg2://" in env["MLFLOW_BACKEND_STORE_URI"]["value"]
    )
    (ing,) = find(objects, "Ingress")
    assert allowed(env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"], ing["spec"]["rules"][0]["host"])
    assert c["image"].split(":")[-1] != "latest"


def test_network_policy_admits_the_pod_a_kubernetes_pod_operator_builds(tmp_path) -> None:
    """The provider's own pod builder (no cluster) on the rendered cpu pod template: the pod it
    would submit carries every label of the task peer."""
    import pendulum
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import DAG

    from tests.support.airflow_pods import build_pod

    objects = render_chart(release=REL, namespace=NS)
    (cm,) = find(objects, "ConfigMap", "airflow-mlops-pod-templates")
    template = tmp_path / "cpu.yaml"
    template.write_text(cm["data"]["cpu.yaml"])
    with DAG("np_check", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        task = KubernetesPodOperator(
            task_id="train",
            namespace=NS,  # the DAGs pass platform.json tasks.namespace
            pod_template_file=str(template),
            image="trainer:0.1.0",
            cmds=["mlops-trainer"],
        )
    pod = build_pod(dag, task)
    task_peer = peers(only(objects))[1]
    assert task_peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == pod[
        "metadata"
    ].get("namespace", NS)
    labels = pod["metadata"]["labels"]
    assert task_peer["podSelector"]["matchLabels"].items() <= labels.items(), labels
