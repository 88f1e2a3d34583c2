{{/*
Helpers of the platform layer (platform.json, pod templates, images, storage, RBAC).
Every helper is prefixed `airflow-mlops.`.
*/}}

{{/*
Names of the two ConfigMaps mounted into every Airflow component. They do not depend on the
release, nameOverride or fullnameOverride: the official chart receives its volumes from our
values (`airflow.volumes`), which cannot be templated, so the names must be known when the
values are written. `mounts.configMapPrefix` sets them; templates/checks verifies that
`airflow.volumes` points at them.
*/}}
{{- define "airflow-mlops.platformConfigMapName" -}}
{{- printf "%s-platform" .Values.mounts.configMapPrefix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "airflow-mlops.podTemplatesConfigMapName" -}}
{{- printf "%s-pod-templates" .Values.mounts.configMapPrefix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Where the ConfigMaps are mounted in Airflow (the contract with dags/mlops_platform). */}}
{{- define "airflow-mlops.platformDir" -}}/opt/airflow/platform{{- end }}
{{- define "airflow-mlops.podTemplatesDir" -}}/opt/airflow/pod-templates{{- end }}

{{/*
An image reference from a repository and a tag, prefixed with images.prefix when set.
Usage: include "airflow-mlops.image" (list . "trainer" "0.1.0")
*/}}
{{- define "airflow-mlops.image" -}}
{{- $root := index . 0 }}
{{- $repository := index . 1 }}
{{- $tag := toString (index . 2) }}
{{- $prefix := trimSuffix "/" (toString $root.Values.images.prefix) }}
{{- if $prefix }}
{{- printf "%s/%s:%s" $prefix $repository $tag }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{/* The trainer image (also the placeholder image of the pod templates' `base` container). */}}
{{- define "airflow-mlops.images.trainer" -}}
{{- include "airflow-mlops.image" (list . .Values.images.trainer.repository .Values.images.trainer.tag) }}
{{- end }}

{{/*
The MLflow image. The MLflow component owns `mlflow.image.{repository,tag}`; read with dig
and defaults so this works before (or without) those keys.
*/}}
{{- define "airflow-mlops.images.mlflow" -}}
{{- $repository := dig "image" "repository" "mlflow" (.Values.mlflow | default dict) }}
{{- $tag := dig "image" "tag" .Chart.Version (.Values.mlflow | default dict) }}
{{- include "airflow-mlops.image" (list . $repository $tag) }}
{{- end }}

{{/*
MLflow tracking URI seen by Airflow and task pods. Reads `mlflow.enabled` (default true),
`mlflow.service.port` (default 5000) and `mlflow.externalTrackingUri` (used when MLflow is
disabled) with dig, so it works before the mlflow keys exist.
*/}}
{{- define "airflow-mlops.mlflow.trackingUri" -}}
{{- $mlflow := .Values.mlflow | default dict }}
{{- if dig "enabled" true $mlflow }}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "airflow-mlops.componentName" (list . "mlflow")) .Release.Namespace (dig "service" "port" 5000 $mlflow) }}
{{- else }}
{{- dig "externalTrackingUri" "" $mlflow }}
{{- end }}
{{- end }}

{{/* Namespace of the task pods (default: the release namespace). */}}
{{- define "airflow-mlops.tasks.namespace" -}}
{{- default .Release.Namespace .Values.tasks.namespace }}
{{- end }}

{{/* Name of the registry pull secret (rendered by us, or the user's existing one). */}}
{{- define "airflow-mlops.registry.secretName" -}}
{{- if .Values.registry.existingSecret }}
{{- .Values.registry.existingSecret }}
{{- else }}
{{- default (include "airflow-mlops.componentName" (list . "registry")) .Values.registry.secretName }}
{{- end }}
{{- end }}

{{/* Claims: workspace (shared run directories) and datasets (NFS). */}}
{{- define "airflow-mlops.workspace.claimName" -}}
{{- default (include "airflow-mlops.componentName" (list . "workspace")) .Values.storage.workspace.existingClaim }}
{{- end }}

{{- define "airflow-mlops.datasets.claimName" -}}
{{- include "airflow-mlops.componentName" (list . "datasets") }}
{{- end }}

{{- define "airflow-mlops.datasets.pvName" -}}
{{- /* PersistentVolumes are cluster-scoped: the namespace keeps two releases apart. */ -}}
{{- printf "%s-%s" .Release.Namespace (include "airflow-mlops.datasets.claimName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The largest GPU count of all profiles (0 without GPU profiles). */}}
{{- define "airflow-mlops.profiles.maxGpus" -}}
{{- $max := 0 }}
{{- range $name, $p := .Values.profiles }}
{{- if and (kindIs "map" $p) (or (kindIs "float64" $p.gpus) (kindIs "int" $p.gpus) (kindIs "int64" $p.gpus)) }}
{{- if gt (int $p.gpus) $max }}{{- $max = int $p.gpus }}{{- end }}
{{- end }}
{{- end }}
{{- $max }}
{{- end }}

{{/* The GPU pool entry of pools.items (empty dict when absent). Output: JSON. */}}
{{- define "airflow-mlops.pools.gpuPool" -}}
{{- $found := dict }}
{{- range .Values.pools.items }}
{{- if eq .name $.Values.pools.gpuPool }}{{- $found = . }}{{- end }}
{{- end }}
{{- toJson $found }}
{{- end }}

{{/*
The platform configuration rendered as JSON (platform.json). Keys are documented in
charts/airflow-mlops/README.md and typed in files/platform.schema.json.
*/}}
{{/* pipelines.secrets as {name: [keys]} (platform.json taskSecrets). Output: JSON. */}}
{{- define "airflow-mlops.pipelines.taskSecrets" -}}
{{- $out := dict }}
{{- range (dig "secrets" list (.Values.pipelines | default dict)) }}
{{- $_ := set $out .name .keys }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{- define "airflow-mlops.platformConfig" -}}
{{- $profiles := dict }}
{{- range $name, $p := .Values.profiles }}
{{- $_ := set $profiles $name (dict
  "gpus" (int $p.gpus)
  "podTemplateFile" (printf "%s/%s.yaml" (include "airflow-mlops.podTemplatesDir" $) $name)
  "description" (default "" $p.description)
) }}
{{- end }}
{{- $registry := dict "enabled" .Values.registry.enabled "host" (ternary .Values.registry.server "" .Values.registry.enabled) "pullSecret" nil }}
{{- if .Values.registry.enabled }}
{{- $_ := set $registry "pullSecret" (include "airflow-mlops.registry.secretName" .) }}
{{- end }}
{{- $gpuPool := include "airflow-mlops.pools.gpuPool" . | fromJson }}
{{- $mlflow := .Values.mlflow | default dict }}
{{- $serving := .Values.serving | default dict }}
{{- $servingCfg := dict
  "enabled" (dig "enabled" false $serving)
  "namespace" (include "airflow-mlops.serving.namespace" .)
  "domain" (dig "domain" "" $serving)
  "ingressClassName" (dig "ingressClassName" "" $serving)
  "tls" (dig "tls" "enabled" false $serving)
  "tlsSecretName" (include "airflow-mlops.serving.tlsSecretName" .)
  "ingressAnnotations" (include "airflow-mlops.serving.ingressAnnotations" . | fromJson)
  "image" (include "airflow-mlops.images.mlflow" .)
  "deploymentTemplateFile" (ternary (printf "%s/serving-deployment.yaml" (include "airflow-mlops.platformDir" .)) nil (dig "enabled" false $serving))
}}
{{- $cfg := dict
  "schemaVersion" 1
  "chartVersion" .Chart.Version
  "release" .Release.Name
  "namespace" .Release.Namespace
  "tasks" (dict
    "namespace" (include "airflow-mlops.tasks.namespace" .)
    "serviceAccountName" (.Values.tasks.serviceAccountName | default nil))
  "registry" $registry
  "images" (dict
    "prefix" (trimSuffix "/" (toString .Values.images.prefix))
    "trainer" (include "airflow-mlops.images.trainer" .)
    "mlflow" (include "airflow-mlops.images.mlflow" .)
    "pullPolicy" .Values.images.pullPolicy)
  "profiles" $profiles
  "defaultProfile" .Values.defaultProfile
  "gpuPool" (dict "name" .Values.pools.gpuPool "slots" (int (default 0 $gpuPool.slots)) "maxWaitSeconds" (int (default 3600 .Values.pools.gpuMaxWaitSeconds)))
  "mlflow" (dict "trackingUri" (include "airflow-mlops.mlflow.trackingUri" .))
  "workspace" (dict
    "enabled" .Values.storage.workspace.enabled
    "mountPath" "/workspace"
    "subPathEnv" "MLOPS_WORKSPACE_SUBPATH"
    "claimName" (ternary (include "airflow-mlops.workspace.claimName" .) nil .Values.storage.workspace.enabled))
  "datasets" (dict
    "enabled" .Values.storage.nfs.enabled
    "mountPath" "/data"
    "readOnly" .Values.storage.nfs.readOnly)
  "serving" $servingCfg
  "schedules" (dig "schedules" dict (.Values.pipelines | default dict))
  "taskSecrets" (include "airflow-mlops.pipelines.taskSecrets" . | fromJson)
  "alerts" (dict
    "webhook" (dict "connId" ((dig "alerts" "webhook" "connId" "" (.Values.pipelines | default dict)) | default nil))
    "smtp" (dict
      "connId" ((dig "alerts" "smtp" "connId" "" (.Values.pipelines | default dict)) | default nil)
      "to" (dig "alerts" "smtp" "to" list (.Values.pipelines | default dict))
      "from" ((dig "alerts" "smtp" "from" "" (.Values.pipelines | default dict)) | default nil)))
-}}
{{- toPrettyJson $cfg }}
{{- end }}

{{/*
basecommand.json (only when basecommand.enabled): the Base Command backend settings the DAGs
read beside platform.json, typed by files/basecommand.schema.json. No credentials: the NGC API
key stays in basecommand.connectionSecret, read by Airflow as the connection connId.
*/}}
{{- define "airflow-mlops.basecommandConfig" -}}
{{- $bc := .Values.basecommand }}
{{- toPrettyJson (dict
  "enabled" true
  "connId" $bc.connId
  "defaultBackend" $bc.defaultBackend
  "org" $bc.org
  "team" (ternary $bc.team nil (ne $bc.team ""))
  "ace" $bc.ace
  "image" (ternary $bc.image nil (ne $bc.image ""))
  "instanceTypes" $bc.instanceTypes
  "timeLimitSeconds" (int $bc.timeLimitSeconds)
  "pollSeconds" (int $bc.pollSeconds)
) }}
{{- end }}
