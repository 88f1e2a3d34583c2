{{/*
Helpers of the airflow-mlops chart. Every helper is prefixed `airflow-mlops.`;
names are cut at 63 characters (the DNS label limit of Kubernetes names).
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "airflow-mlops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: `<release>-<chart>` unless the release name already contains
the chart name; fullnameOverride wins. Cut at 63 characters.
*/}}
{{- define "airflow-mlops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A component's resource name: `<fullname>-<component>`, cut at 63 characters.
Usage: include "airflow-mlops.componentName" (list . "mlflow")
*/}}
{{- define "airflow-mlops.componentName" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- printf "%s-%s" (include "airflow-mlops.fullname" $root | trunc (int (sub 62 (len $component))) | trimSuffix "-") $component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Chart name and version, as used by the helm.sh/chart label. */}}
{{- define "airflow-mlops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades, never add version labels here. */}}
{{- define "airflow-mlops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airflow-mlops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels for every object of this chart's own templates. */}}
{{- define "airflow-mlops.labels" -}}
helm.sh/chart: {{ include "airflow-mlops.chart" . }}
{{ include "airflow-mlops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: airflow-mlops
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of one component. Usage: include "airflow-mlops.componentLabels" (list . "mlflow")
*/}}
{{- define "airflow-mlops.componentLabels" -}}
{{ include "airflow-mlops.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
Selector labels of one component. Usage: include "airflow-mlops.componentSelectorLabels" (list . "mlflow")
*/}}
{{- define "airflow-mlops.componentSelectorLabels" -}}
{{ include "airflow-mlops.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}
