{{/*
Helpers of the platform layer: the two mounted ConfigMaps, images, the task namespace, the
profiles' GPU maximum and platform.json / basecommand.json. Each component's own helpers are in
its folder (_mlflow.tpl, _registry.tpl, _pools.tpl, _storage.tpl, ...).
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

{{/* Namespace of the task pods (default: the release namespace). */}}
{{- define "airflow-mlops.tasks.namespace" -}}
{{- default .Release.Namespace .Values.tasks.namespace }}
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

{{/*
The platform configuration rendered as JSON (platform.json). Keys are documented in
charts/airflow-mlops/README.md and typed in files/platform.schema.json.
*/}}
{{/* pipelines.secrets as {name: [keys]} (platform.json taskSecrets). Output: JSON. */}}
{{- define "airflow-mlops.pipelines.taskSecrets" -}}
{{- $out := dict }}
{{- range .Values.pipelines.secrets }}
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
{{- $serving := .Values.serving }}
{{- $servingCfg := dict
  "enabled" $serving.enabled
  "namespace" (include "airflow-mlops.serving.namespace" .)
  "domain" $serving.domain
  "ingressClassName" $serving.ingressClassName
  "tls" $serving.tls.enabled
  "tlsSecretName" (include "airflow-mlops.serving.tlsSecretName" .)
  "ingressAnnotations" (include "airflow-mlops.serving.ingressAnnotations" . | fromJson)
  "image" (include "airflow-mlops.images.mlflow" .)
  "deploymentTemplateFile" (ternary (printf "%s/serving-deployment.yaml" (include "airflow-mlops.platformDir" .)) nil $serving.enabled)
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
  "schedules" .Values.pipelines.schedules
  "taskSecrets" (include "airflow-mlops.pipelines.taskSecrets" . | fromJson)
  "alerts" (dict
    "webhook" (dict "connId" (.Values.pipelines.alerts.webhook.connId | default nil))
    "smtp" (dict
      "connId" (.Values.pipelines.alerts.smtp.connId | default nil)
      "to" .Values.pipelines.alerts.smtp.to
      "from" (.Values.pipelines.alerts.smtp.from | default nil)))
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
