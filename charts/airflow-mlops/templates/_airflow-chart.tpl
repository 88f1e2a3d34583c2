{{/*
The coupling with the official Apache Airflow chart (the `airflow` subchart), in one place.

Our templates name objects that the official chart creates (its metadata Secret, its service
accounts, its Airflow image). Those names are never rebuilt here: every helper below calls
the official chart's own named template in the official chart's own scope
(`.Subcharts.airflow`: its values with its defaults, its Chart, the release), the way the
subchart itself calls it. A change of the official chart's naming therefore reaches us with
the chart, and tests/chart/test_naming.py checks the result against the rendered objects.

With `airflow.enabled: false` the subchart and its templates are absent: the helpers fail
with a message naming the value that must be set instead.
*/}}

{{/* "true" when the official chart is part of this render. */}}
{{- define "airflow-mlops.airflowChart.enabled" -}}
{{- if and .Values.airflow.enabled (hasKey .Subcharts "airflow") }}true{{ end }}
{{- end }}

{{/*
Call one of the official chart's named templates in its scope and return the string, without
the quotes some of them add. Usage: include "airflow-mlops.airflowChart.call" (list . "airflow_image" "<value to set otherwise>")
*/}}
{{- define "airflow-mlops.airflowChart.call" -}}
{{- $root := index . 0 }}
{{- $template := index . 1 }}
{{- if not (include "airflow-mlops.airflowChart.enabled" $root) }}
{{- fail (printf "airflow.enabled=false: the official Airflow chart is not rendered, so %s cannot be derived from it; set %s" $template (index . 2)) }}
{{- end }}
{{- include $template $root.Subcharts.airflow | trim | trimAll "\"" }}
{{- end }}

{{/* The Secret with the metadata database connection (key `connection`). */}}
{{- define "airflow-mlops.airflowChart.metadataSecret" -}}
{{- include "airflow-mlops.airflowChart.call" (list . "airflow_metadata_secret" "airflow.data.metadataSecretName") }}
{{- end }}

{{/* The Airflow image of Airflow's own pods (repository:tag, or repository@digest). */}}
{{- define "airflow-mlops.airflowChart.image" -}}
{{- include "airflow-mlops.airflowChart.call" (list . "airflow_image" "airflow.images.airflow") }}
{{- end }}

{{/*
Service accounts of the Airflow components that run KubernetesPodOperator code, by executor
(`airflow.executor`, a comma-separated list in Airflow 3):
  LocalExecutor                      tasks run in the scheduler          -> scheduler
  CeleryExecutor, KubernetesExecutor tasks run in worker pods            -> workers
  LocalKubernetesExecutor,
  CeleryKubernetesExecutor           both kinds of task process          -> scheduler and/or workers
plus the triggerer when it is enabled (deferrable operators watch their pods from it).
Names come from the official chart's `<component>.serviceAccountName` helpers, so they follow
useStandardNaming, nameOverride, fullnameOverride, `<component>.serviceAccount.name` and
`.create`. `tasks.rbac.serviceAccountNames` replaces the list (required without the subchart).
Output: a JSON list.
*/}}
{{- define "airflow-mlops.airflowChart.podLauncherServiceAccounts" -}}
{{- if .Values.tasks.rbac.serviceAccountNames }}
{{- toJson .Values.tasks.rbac.serviceAccountNames }}
{{- else }}
{{- $set := "tasks.rbac.serviceAccountNames" }}
{{- if not (include "airflow-mlops.airflowChart.enabled" .) }}
{{- fail (printf "airflow.enabled=false: the official Airflow chart is not rendered, so the service accounts that launch task pods are unknown; set %s" $set) }}
{{- end }}
{{- $af := .Subcharts.airflow.Values }}
{{- $scheduler := list "LocalExecutor" "LocalKubernetesExecutor" "CeleryKubernetesExecutor" }}
{{- $workers := list "CeleryExecutor" "KubernetesExecutor" "LocalKubernetesExecutor" "CeleryKubernetesExecutor" }}
{{- $names := list }}
{{- range $executor := splitList "," (toString $af.executor) }}
{{- $executor = trim $executor }}
{{- if not (or (has $executor $scheduler) (has $executor $workers)) }}
{{- fail (printf "airflow.executor: %q is not one of %s, so the service accounts that launch task pods are unknown; set %s" $executor (concat $scheduler (list "CeleryExecutor" "KubernetesExecutor") | uniq | join ", ") $set) }}
{{- end }}
{{- if has $executor $scheduler }}
{{- $names = append $names (include "airflow-mlops.airflowChart.call" (list $ "scheduler.serviceAccountName" $set)) }}
{{- end }}
{{- if has $executor $workers }}
{{- $names = append $names (include "airflow-mlops.airflowChart.call" (list $ "worker.serviceAccountName" $set)) }}
{{- end }}
{{- end }}
{{- if $af.triggerer.enabled }}
{{- $names = append $names (include "airflow-mlops.airflowChart.call" (list . "triggerer.serviceAccountName" $set)) }}
{{- end }}
{{- toJson (uniq $names) }}
{{- end }}
{{- end }}

{{/*
Objects of the official chart whose names Kubernetes limits to 63 characters (Services, and
Jobs and StatefulSets, whose names become label values; CronJobs to 52; the scheduler,
triggerer and workers are StatefulSets in some configurations). The official chart
does not shorten them, so a long release name (or fullnameOverride) makes the API server
reject the install. check-values renders these templates of the official chart, in its scope,
and refuses such names at render with the limit.
*/}}
{{- define "airflow-mlops.airflowChart.limitedNameTemplates" -}}
{{- list "api-server/api-server-service.yaml" "flower/flower-service.yaml" "pgbouncer/pgbouncer-service.yaml"
  "redis/redis-service.yaml" "redis/redis-statefulset.yaml" "scheduler/scheduler-service.yaml"
  "statsd/statsd-service.yaml" "triggerer/triggerer-service.yaml" "webserver/webserver-service.yaml"
  "workers/worker-service.yaml" "jobs/create-user-job.yaml" "jobs/migrate-database-job.yaml"
  "cleanup/cleanup-cronjob.yaml" "database-cleanup/database-cleanup-cronjob.yaml"
  "scheduler/scheduler-deployment.yaml" "triggerer/triggerer-deployment.yaml" "workers/worker-deployment.yaml" | toJson }}
{{- end }}

{{/* Fails when an object of the official chart would get a name the API server rejects. */}}
{{- define "airflow-mlops.airflowChart.checkNames" -}}
{{- if include "airflow-mlops.airflowChart.enabled" . }}
{{- $sc := .Subcharts.airflow }}
{{- $limits := dict "Service" 63 "Job" 63 "StatefulSet" 63 "CronJob" 52 }}
{{- range $file := include "airflow-mlops.airflowChart.limitedNameTemplates" . | fromJsonArray }}
{{- $path := printf "%s/charts/airflow/templates/%s" $.Chart.Name $file }}
{{- range $doc := regexSplit "(?m)^---\\s*$" (include $path $sc) -1 }}
{{- $obj := fromYaml $doc }}
{{- $limit := get $limits (toString (get $obj "kind")) }}
{{- if and $limit $obj.metadata }}
{{- if gt (len $obj.metadata.name) (int $limit) }}
{{- include "airflow-mlops.checks.refuse" (printf "release name %q: the official Airflow chart would name its %s %q (%d characters, Kubernetes allows %d) and the install would be rejected. Use a shorter release name, or set airflow.useStandardNaming=true with a shorter airflow.fullnameOverride." $.Release.Name $obj.kind $obj.metadata.name (len $obj.metadata.name) (int $limit)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
