{{/*
Helpers of model serving (chart-managed models under `serving.models`). The objects use the
labels of the ml_serving DAG's objects (dags/mlops_platform/serving.py), so the MLflow
NetworkPolicy admits both, but other names (`<fullname>-serving-<model>`): Helm and the DAG
never manage the same object.
*/}}

{{- define "airflow-mlops.serving.namespace" -}}
{{- default .Release.Namespace .Values.serving.namespace }}
{{- end }}

{{/* Usage: include "airflow-mlops.serving.modelName" (list . $model) */}}
{{- define "airflow-mlops.serving.modelName" -}}
{{- include "airflow-mlops.componentName" (list (index . 0) (printf "serving-%s" (index . 1).name)) }}
{{- end }}

{{/* Host of a model behind the ingress: `<model>.<serving.domain>`. */}}
{{- define "airflow-mlops.serving.host" -}}
{{- printf "%s.%s" (index . 1).name (trimAll "." (index . 0).Values.serving.domain) }}
{{- end }}

{{- define "airflow-mlops.serving.selectorLabels" -}}
{{- $root := index . 0 }}
app.kubernetes.io/name: mlflow-model-server
app.kubernetes.io/instance: {{ $root.Release.Name }}
mlops.airflow.apache.org/model: {{ (index . 1).name }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end }}

{{- define "airflow-mlops.serving.labels" -}}
{{- $root := index . 0 }}
helm.sh/chart: {{ include "airflow-mlops.chart" $root }}
{{ include "airflow-mlops.serving.selectorLabels" . }}
app.kubernetes.io/component: model-serving
app.kubernetes.io/part-of: airflow-mlops
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of serving objects that are not per model (Role, RoleBinding, Ingress). */}}
{{- define "airflow-mlops.serving.commonLabels" -}}
{{ include "airflow-mlops.componentLabels" (list . "model-serving") }}
{{- end }}
