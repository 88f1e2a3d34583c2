"""Bad values are refused, each with a message naming the key and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.helm import HelmError, render_chart

KNOWN_HOSTS = (
    "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
)
REGISTRY = {"enabled": True, "server": "nexus.example.com", "username": "u", "password": "p"}


def git_sync(repo: str, **extra: Any) -> dict[str, Any]:
    return {"airflow": {"dags": {"gitSync": {"enabled": True, "repo": repo, "sshKeySecret": "k", **extra}}}}


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "ssh-url-without-known-hosts",
        git_sync("ssh://git@git.example.com/ml/dags.git"),
        ["airflow.dags.gitSync.knownHosts is required", "scripts/gitsync-bootstrap", "--set-file"],
    ),
    (
        "scp-like-repo-without-known-hosts",
        git_sync("git@github.com:org/dags.git"),
        ["airflow.dags.gitSync.knownHosts is required", "scripts/gitsync-bootstrap"],
    ),
    (
        "ssh-repo-without-key",
        {
            "airflow": {
                "dags": {"gitSync": {"enabled": True, "repo": "git@h:o/r.git", "knownHosts": KNOWN_HOSTS}}
            }
        },
        ["airflow.dags.gitSync.sshKeySecret", "gitSshKey"],
    ),
    (
        "registry-without-credentials",
        {"registry": {"enabled": True, "server": "nexus.example.com"}},
        ["registry.existingSecret", "registry.username", "registry.password"],
    ),
    (
        "registry-without-server",
        {"registry": {"enabled": True, "existingSecret": "pull"}, "airflow": {"imagePullSecrets": ["pull"]}},
        ["registry.server is required"],
    ),
    (
        "registry-secret-not-in-imagePullSecrets",
        {"registry": REGISTRY, "airflow": {"imagePullSecrets": ["other"]}},
        ["airflow.imagePullSecrets must list", '"test-airflow-mlops-registry"', "no registry.secretNames"],
    ),
    (
        "existing-registry-secret-not-listed",
        {"registry": {"enabled": True, "server": "n", "existingSecret": "nexus-pull"}},
        ["airflow.imagePullSecrets must list", '"nexus-pull"'],
    ),
    (
        "nfs-without-server",
        {"storage": {"nfs": {"enabled": True, "path": "/exports"}}},
        ["storage.nfs.server", "storage.nfs.path"],
    ),
    (
        "nfs-without-path",
        {"storage": {"nfs": {"enabled": True, "server": "10.0.0.2"}}},
        ["storage.nfs.path"],
    ),
    ("gpus-negative", {"profiles": {"gpu-1": {"gpus": -1}}}, ["profiles", "gpu-1", "gpus", "below the minimum"]),
    ("gpus-fractional", {"profiles": {"gpu-1": {"gpus": 1.5}}}, ["profiles", "gpu-1", "gpus", "whole number"]),
    ("gpus-non-numeric", {"profiles": {"gpu-1": {"gpus": "two"}}}, ["profiles", "gpu-1", "gpus", "whole number"]),
    (
        "gpu-pool-smaller-than-largest-profile",
        {"pools": {"items": [{"name": "gpu", "slots": 4}]}},
        ["pools.items[gpu].slots=4", "largest GPU profile (8 GPUs)", "slots >= 8"],
    ),
    (
        "gpu-pool-missing",
        {"pools": {"items": [{"name": "other", "slots": 4}]}},
        ['pools.gpuPool "gpu" is not in pools.items'],
    ),
    ("gpu-max-wait-too-short", {"pools": {"gpuMaxWaitSeconds": 5}}, ["pools", "gpuMaxWaitSeconds", "below the minimum"]),
    ("gpu-max-wait-not-integer", {"pools": {"gpuMaxWaitSeconds": "1h"}}, ["pools", "gpuMaxWaitSeconds", "whole number"]),
    ("unknown-key-in-profile", {"profiles": {"cpu": {"gpus": 0, "gpu": 1}}}, ["profiles", "cpu", '"gpu"']),
    ("unknown-key-in-storage", {"storage": {"nfs": {"sever": "x"}}}, ["storage", "nfs", '"sever"']),
    ("unknown-key-in-registry", {"registry": {"secretNames": ["x"]}}, ["registry", '"secretNames"']),
    ("unknown-key-in-tasks", {"tasks": {"rbac": {"clusterWide": True}}}, ["tasks", "rbac", '"clusterWide"']),
    ("unknown-key-in-pools", {"pools": {"hooks": False}}, ["pools", '"hooks"']),
    ("unknown-key-in-devDatabase", {"devDatabase": {"password": "x"}}, ["devDatabase", '"password"']),
    (
        "profile-name-uppercase",
        {"profiles": {"GPU_1": {"gpus": 1}}},
        ["profiles.GPU_1", "lowercase DNS label"],
    ),
    ("profile-name-with-slash", {"profiles": {"../etc": {"gpus": 0}}}, ["profiles.../etc", "file name"]),
    (
        "default-profile-unknown",
        {"defaultProfile": "gpu-3"},
        ['defaultProfile "gpu-3" is not a profile', "gpu-1"],
    ),
    (
        "trainer-tag-latest",
        {"images": {"trainer": {"tag": "latest"}}},
        ['images.trainer.tag="latest" is refused. Allowed: a fixed tag'],
    ),
    (
        "dev-database-without-secret",
        {"devDatabase": {"enabled": True}},
        ["devDatabase.auth.existingSecret is required"],
    ),
    (
        "dev-database-with-bitnami-postgresql",
        {
            "devDatabase": {"enabled": True, "auth": {"existingSecret": "db"}},
            "development": {"unsafeBundledPostgresql": True},
            "airflow": {"postgresql": {"enabled": True}, "data": {"metadataSecretName": None}},
        },
        ["airflow.postgresql.enabled=false", "57328"],
    ),
    (
        "dev-database-without-metadata-secret",
        {
            "devDatabase": {"enabled": True, "auth": {"existingSecret": "db"}},
            "airflow": {"postgresql": {"enabled": False}, "data": {"metadataSecretName": None}},
        },
        [
            "airflow.data.metadataSecretName",
            "test-airflow-mlops-dev-database.airflow-mlops.svc.cluster.local",
        ],
    ),
    (
        "mounts-not-wired",
        {"mounts": {"configMapPrefix": "team-b"}},
        ['mount ConfigMap "team-b-platform" at /opt/airflow/platform', "mounts.configMapPrefix"],
    ),
]


SERVING = {"enabled": True, "domain": "models.example.com"}


def model(**extra: Any) -> dict[str, Any]:
    return {
        "serving": {**SERVING, "models": [{"name": "iris", "modelUri": "models:/iris@champion", **extra}]}
    }


# Bad values as operators plausibly write them, by class; each message must name the key
# (values.schema.json: the JSON pointer of the value; templates/checks: the dotted key).
CASES += [
    # quantities
    ("size-negative", {"storage": {"nfs": {"capacity": "-5Gi"}}}, ["storage.nfs.capacity", "Allowed:"]),
    ("size-with-space-and-si-word", {"storage": {"nfs": {"capacity": "500 GB"}}}, ["storage.nfs.capacity"]),
    ("size-in-words", {"storage": {"workspace": {"size": "ten terabytes"}}}, ["storage.workspace.size"]),
    ("size-empty", {"storage": {"workspace": {"size": ""}}}, ["storage.workspace.size"]),
    ("size-zero", {"mlflow": {"persistence": {"size": "0Gi"}}}, ["mlflow.persistence.size"]),
    (
        "size-unit-spaced",
        {"devDatabase": {"persistence": {"size": "2 Gi"}}},
        ["devDatabase.persistence.size"],
    ),
    ("tmp-size-limit-si-word", {"tasks": {"tmpSizeLimit": "1GB"}}, ["tasks.tmpSizeLimit"]),
    (
        "memory-2GB",
        {"mlflow": {"resources": {"limits": {"memory": "2GB"}}}},
        ["mlflow.resources.limits.memory"],
    ),
    (
        "cpu-in-words",
        {"profiles": {"cpu": {"gpus": 0, "resources": {"requests": {"cpu": "two"}}}}},
        ["profiles.cpu.resources.requests.cpu"],
    ),
    (
        "memory-negative-number",
        model(resources={"limits": {"memory": -1}}),
        ["serving.models[0].resources.limits.memory"],
    ),
    (
        "pool-job-memory-MB",
        {"pools": {"resources": {"requests": {"memory": "256MB"}}}},
        ["pools.resources.requests.memory"],
    ),
    # requests <= limits, extended resources (render-time checks)
    (
        "mlflow-request-above-limit",
        {"mlflow": {"resources": {"limits": {"memory": "256Mi"}}}},
        ["mlflow.resources.requests.memory=512Mi is above mlflow.resources.limits.memory=256Mi"],
    ),
    (
        "profile-request-above-limit",
        {
            "profiles": {
                "gpu-1": {"gpus": 1, "resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": 1}}}
            }
        },
        ["profiles.gpu-1.resources.requests.cpu=1500m is above profiles.gpu-1.resources.limits.cpu=1"],
    ),
    (
        "pool-job-request-above-limit",
        {"pools": {"resources": {"requests": {"memory": "1Gi"}}}},
        ["pools.resources.requests.memory=1Gi is above pools.resources.limits.memory=512Mi"],
    ),
    (
        "dev-database-request-above-limit",
        {"devDatabase": {"resources": {"requests": {"memory": "2Gi"}}}},
        ["devDatabase.resources.requests.memory=2Gi is above"],
    ),
    (
        "serving-model-request-above-limit",
        model(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        ["serving.models[0].resources.requests.cpu=2 is above serving.models[0].resources.limits.cpu=1"],
    ),
    (
        "serving-default-request-above-limit",
        {"serving": {"resources": {"limits": {"memory": "256Mi"}}}},
        ["serving.resources.requests.memory=512Mi is above"],
    ),
    (
        "profile-sets-gpu-limit-by-hand",
        {"profiles": {"gpu-1": {"gpus": 1, "resources": {"limits": {"nvidia.com/gpu": 2}}}}},
        ["profiles.gpu-1.resources.limits must not set nvidia.com/gpu", "profiles.gpu-1.gpus"],
    ),
    (
        "extended-resource-overcommitted",
        {
            "profiles": {
                "cpu": {
                    "gpus": 0,
                    "resources": {"requests": {"xilinx.com/fpga": 1}, "limits": {"xilinx.com/fpga": 2}},
                }
            }
        },
        ["profiles.cpu.resources.requests.xilinx.com/fpga=1 differs from", "must equal its limit"],
    ),
    # counts
    ("replicas-huge", {"mlflow": {"replicas": 99999999999}}, ["mlflow.replicas", "above the maximum"]),
    ("serving-replicas-huge", model(replicas=99999999999), ["serving.models[0].replicas", "above the maximum"]),
    ("serving-workers-zero", model(workers=0), ["serving.models[0].workers", "below the minimum"]),
    # names, labels
    ("fullname-override-capitals", {"fullnameOverride": "MLOps"}, ["fullnameOverride", "Allowed:"]),
    ("name-override-underscore", {"nameOverride": "my_chart"}, ["nameOverride"]),
    ("label-value-with-space", {"commonLabels": {"team": "ml ops"}}, ["commonLabels.team", "Allowed:"]),
    ("label-key-with-space", {"commonLabels": {"cost center": "ml"}}, ["commonLabels", '"cost center"']),
    (
        "node-selector-key-with-space",
        {"gpu": {"nodeSelector": {"gpu present": "true"}}},
        ["gpu.nodeSelector", '"gpu present"'],
    ),
    (
        "node-selector-value-too-long",
        {"profiles": {"cpu": {"gpus": 0, "nodeSelector": {"pool": "x" * 64}}}},
        ["profiles.cpu.nodeSelector.pool"],
    ),
    (
        "service-account-capitals",
        {"tasks": {"serviceAccountName": "Task_Runner"}},
        ["tasks.serviceAccountName"],
    ),
    (
        "bound-service-account-with-space",
        {"tasks": {"rbac": {"serviceAccountNames": ["airflow worker"]}}},
        ["tasks.rbac.serviceAccountNames[0]"],
    ),
    (
        "mlflow-service-account-capitals",
        {"mlflow": {"serviceAccount": {"name": "MLflow"}}},
        ["mlflow.serviceAccount.name"],
    ),
    (
        "priority-class-with-space",
        {"profiles": {"gpu-8": {"gpus": 8, "priorityClassName": "High Priority"}}},
        ["profiles.gpu-8.priorityClassName"],
    ),
    ("secret-name-underscore", {"registry": {"existingSecret": "nexus_pull"}}, ["registry.existingSecret"]),
    (
        "storage-class-with-space",
        {"storage": {"workspace": {"storageClassName": "fast ssd"}}},
        ["storage.workspace.storageClassName"],
    ),
    ("serving-namespace-capitals", {"serving": {"namespace": "Models"}}, ["serving.namespace"]),
    ("serving-namespace-leading-dash", {"serving": {"namespace": "-models"}}, ["serving.namespace"]),
    ("serving-namespace-too-long", {"serving": {"namespace": "m" * 64}}, ["serving.namespace"]),
    (
        "serving-namespace-is-the-release-namespace",
        {"serving": {**SERVING, "namespace": "airflow-mlops"}},
        [
            'serving.namespace must not be the release namespace "airflow-mlops"',
            "serving Role",
            "airflow-mlops-serving",
        ],
    ),
    (
        "serving-namespace-is-the-task-namespace",
        {"tasks": {"namespace": "mlops-jobs"}, "serving": {**SERVING, "namespace": "mlops-jobs"}},
        ['serving.namespace must not be the task namespace "mlops-jobs"', "tasks.namespace"],
    ),
    (
        "annotation-key-with-space",
        {"mlflow": {"podAnnotations": {"backup policy": "x"}}},
        ["mlflow.podAnnotations", '"backup policy"'],
    ),
    # hosts
    (
        "serving-domain-wildcard",
        {"serving": {"domain": "*.models.example.com"}},
        ["serving.domain", "Allowed:"],
    ),
    (
        "ingress-host-is-url",
        {"mlflow": {"ingress": {"host": "https://mlflow.example.com"}}},
        ["mlflow.ingress.host"],
    ),
    (
        "ingress-host-capitals",
        {"mlflow": {"ingress": {"host": "MLflow.Example.com"}}},
        ["mlflow.ingress.host"],
    ),
    ("nfs-server-is-url", {"storage": {"nfs": {"server": "nfs://10.0.0.2"}}}, ["storage.nfs.server"]),
    ("nfs-path-relative", {"storage": {"nfs": {"path": "exports/data"}}}, ["storage.nfs.path"]),
    (
        "registry-server-is-url",
        {"registry": {"server": "https://nexus.example.com"}},
        ['registry.server="https://nexus.example.com" is not of the allowed form', "no scheme"],
    ),
    # image references
    (
        "image-repository-capitals",
        {"images": {"trainer": {"repository": "mlops/Trainer"}}},
        ["images.trainer.repository"],
    ),
    (
        "image-repository-with-tag",
        {"devDatabase": {"image": {"repository": "postgres:17"}}},
        ["devDatabase.image.repository"],
    ),
    ("image-tag-with-space", {"mlflow": {"image": {"tag": "0.1.0 "}}}, ['mlflow.image.tag="0.1.0 " is not of the allowed form', "an image tag"]),
    (
        "image-tag-latest",
        {"mlflow": {"image": {"tag": "latest"}}},
        ['mlflow.image.tag="latest" is refused', "Allowed: a fixed tag"],
    ),
    (
        "image-prefix-is-url",
        {"images": {"prefix": "https://nexus.example.com/mlops"}},
        ['images.prefix="https://nexus.example.com/mlops" is not of the allowed form', "no scheme"],
    ),
    # resource names
    ("gpu-resource-name-misspelt", {"gpu": {"resourceName": "nvidia.com/gpus"}}, ["gpu.resourceName"]),
    (
        "resource-name-with-space",
        {"profiles": {"cpu": {"gpus": 0, "resources": {"limits": {"nvidia gpu": 1}}}}},
        ["profiles.cpu.resources.limits", '"nvidia gpu"'],
    ),
    (
        "resources-misspelt-key",
        {"mlflow": {"resources": {"limit": {"memory": "1Gi"}}}},
        ["mlflow.resources", '"limit"'],
    ),
    # pod template objects (the API server never validates a template in a ConfigMap)
    (
        "affinity-key-misspelt",
        {"profiles": {"gpu-1": {"gpus": 1, "affinity": {"nodeAffinity": {"requiredDuringScheduling": {}}}}}},
        ["profiles.gpu-1.affinity.nodeAffinity", '"requiredDuringScheduling"'],
    ),
    (
        "anti-affinity-key-misspelt",
        {"mlflow": {"affinity": {"podAntiAffinity": {"preferedDuringSchedulingIgnoredDuringExecution": []}}}},
        ["mlflow.affinity.podAntiAffinity", '"preferedDuringSchedulingIgnoredDuringExecution"'],
    ),
    (
        "node-affinity-operator-lowercase",
        {
            "profiles": {
                "cpu": {
                    "gpus": 0,
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": "zone", "operator": "in", "values": ["a"]}]}
                                ]
                            }
                        }
                    },
                }
            }
        },
        [
            "profiles.cpu.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator"
        ],
    ),
    (
        "toleration-operator-lowercase",
        {"gpu": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "exists", "effect": "NoSchedule"}]}},
        ["gpu.tolerations[0].operator", '"Exists"'],
    ),
    (
        "toleration-effect-misspelt",
        {
            "profiles": {
                "gpu-1": {
                    "gpus": 1,
                    "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoScheduling"}],
                }
            }
        },
        ["profiles.gpu-1.tolerations[0].effect"],
    ),
    (
        "toleration-key-misspelt",
        {"mlflow": {"tolerations": [{"key": "a", "operator": "Exists", "tolerationSecond": 30}]}},
        ["mlflow.tolerations[0]", '"tolerationSecond"'],
    ),
    (
        "run-as-root",
        {"tasks": {"podSecurityContext": {"runAsUser": 0}}},
        ["tasks.podSecurityContext.runAsUser"],
    ),
    (
        "privileged",
        {"tasks": {"containerSecurityContext": {"privileged": True}}},
        ["tasks.containerSecurityContext.privileged"],
    ),
    (
        "privilege-escalation",
        {"serving": {"containerSecurityContext": {"allowPrivilegeEscalation": True}}},
        ["serving.containerSecurityContext.allowPrivilegeEscalation"],
    ),
    (
        "capability-added",
        {"mlflow": {"containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}},
        ["mlflow.containerSecurityContext.capabilities.add[0]"],
    ),
    (
        "run-as-non-root-off",
        {"mlflow": {"podSecurityContext": {"runAsNonRoot": False}}},
        ["mlflow.podSecurityContext.runAsNonRoot"],
    ),
    (
        "seccomp-unconfined",
        {"tasks": {"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}}},
        ["tasks.podSecurityContext.seccompProfile.type"],
    ),
    (
        "security-context-key-misspelt",
        {"serving": {"containerSecurityContext": {"readOnlyRootFileSystem": True}}},
        ["serving.containerSecurityContext", '"readOnlyRootFileSystem"'],
    ),
    # required keys of the restricted security contexts and of Kubernetes objects (a null deletes a default)
    (
        "restricted-context-without-capabilities",
        {"serving": {"containerSecurityContext": {"capabilities": None}}},
        ["serving.containerSecurityContext.capabilities is missing; it is required. Allowed: a map"],
    ),
    (
        "restricted-context-drop-not-a-name",
        {"tasks": {"containerSecurityContext": {"capabilities": {"drop": [7]}}}},
        ["tasks.containerSecurityContext.capabilities.drop[0]=7 is a whole number. Allowed: a string",
         "tasks.containerSecurityContext.capabilities.drop=[7] is refused. Allowed: a list that includes ALL"],
    ),
    (
        "restricted-pod-without-seccomp",
        {"tasks": {"podSecurityContext": {"seccompProfile": None}}},
        ["tasks.podSecurityContext.seccompProfile is missing; it is required"],
    ),
    (
        "pod-affinity-term-without-topology-key",
        {"mlflow": {"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": {"labelSelector": {}}}]}}}},
        ["mlflow.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey is missing; it is required. Allowed: a string."],
    ),
    ("env-name-with-space", {"tasks": {"env": [{"name": "MY VAR", "value": "1"}]}}, ["tasks.env[0].name"]),
    ("env-without-name", {"tasks": {"env": [{"value": "1"}]}}, ["tasks.env[0]", "name"]),
    (
        "env-secret-ref-misspelt",
        {"mlflow": {"extraEnv": [{"name": "A", "valueFrom": {"secretKeyRef": {"nam": "s", "key": "k"}}}]}},
        ["mlflow.extraEnv[0].valueFrom.secretKeyRef", '"nam"'],
    ),
    (
        "label-selector-misspelt",
        {
            "mlflow": {
                "networkPolicy": {"ingressController": {"namespaceSelector": {"matchLabel": {"a": "b"}}}}
            }
        },
        ["mlflow.networkPolicy.ingressController.namespaceSelector", '"matchLabel"'],
    ),
    (
        "network-policy-peer-misspelt",
        {"mlflow": {"networkPolicy": {"extraFrom": [{"namespace": "monitoring"}]}}},
        ["mlflow.networkPolicy.extraFrom[0]", '"namespace"'],
    ),
]


@pytest.mark.parametrize("values,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_values_are_refused_with_a_clear_message(values: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(HelmError) as excinfo:
        render_chart(values=values, validate=False)
    message = str(excinfo.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_at_least_forty_bad_cases() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES), "case ids must be unique"


def test_the_good_neighbours_of_the_bad_cases_render() -> None:
    """Each refusal is specific: the corrected values render."""
    render_chart(values=git_sync("git@git.example.com:org/dags.git", knownHosts=KNOWN_HOSTS))
    render_chart(
        values={
            "registry": REGISTRY,
            "airflow": {"imagePullSecrets": [{"name": "test-airflow-mlops-registry"}]},
        }
    )
    render_chart(values={"storage": {"nfs": {"enabled": True, "server": "10.0.0.2", "path": "/exports"}}})
    render_chart(values={"pools": {"items": [{"name": "gpu", "slots": 8}]}})
    render_chart(values={"pools": {"items": [{"name": "gpu", "slots": -1}]}})
    render_chart(values={"profiles": {"gpu-8": None}, "pools": {"items": [{"name": "gpu", "slots": 4}]}})
    render_chart(values=git_sync("https://github.com/org/dags.git"))  # https: no host key involved
    render_chart(
        values={"tasks": {"namespace": "mlops-jobs"}, "serving": {**SERVING, "namespace": "mlops-models"}}
    )


def test_valid_kubernetes_objects_in_the_values_reach_the_pod_templates() -> None:
    """The strict sub-schemas accept what Kubernetes accepts: a full affinity, tolerations,
    env with valueFrom, quantities in every notation; the rendered templates validate as Pods."""
    from tests.support import paths
    from tests.support.helm import find, parse_documents
    from tests.support.k8s import validate_objects

    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
                        ]
                    }
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 10,
                    "preference": {"matchExpressions": [{"key": "gpu-model", "operator": "Exists"}]},
                }
            ],
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "task"}},
                    },
                }
            ]
        },
    }
    values = {
        "profiles": {
            "gpu-1": {
                "gpus": 1,
                "affinity": affinity,
                "nodeSelector": {"example.com/gpu-model": "A100_80GB"},
                "tolerations": [
                    {
                        "key": "spot",
                        "operator": "Equal",
                        "value": "yes",
                        "effect": "NoExecute",
                        "tolerationSeconds": 60,
                    }
                ],
                "resources": {
                    "requests": {"cpu": "1.5", "memory": "1e9", "ephemeral-storage": "1Gi"},
                    "limits": {"cpu": 2, "memory": "2G"},
                },
                "priorityClassName": "batch.high",
            }
        },
        "tasks": {
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "tmpSizeLimit": "1.5Gi",
        },
        "gpu": {"resourceName": "nvidia.com/mig-1g.10gb"},
        "storage": {"nfs": {"enabled": True, "server": "10.0.0.2", "path": "/exports", "capacity": "500G"}},
        "commonLabels": {"example.com/team": "ml-ops_1"},
    }
    objects = render_chart(values=values)
    (cm,) = [o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-pod-templates")]
    pods = [parse_documents(f"# Source: {key}\n{text}")[0] for key, text in cm["data"].items()]
    validate_objects(pods, versions=paths.KUBE_VERSIONS)
    (gpu1,) = [p for p in pods if p["metadata"]["labels"]["mlops.airflow.apache.org/profile"] == "gpu-1"]
    assert gpu1["spec"]["affinity"] == affinity
    assert gpu1["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
