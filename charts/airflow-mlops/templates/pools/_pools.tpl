{{/* Helpers of the pools Job. */}}

{{/* pools.json for `airflow pools import` ({name: {slots, description, include_deferred}}). */}}
{{- define "airflow-mlops.pools.json" -}}
{{- $pools := dict }}
{{- range .Values.pools.items }}
{{- $_ := set $pools .name (dict "slots" (int .slots) "description" (default "" .description) "include_deferred" (default false .includeDeferred)) }}
{{- end }}
{{- toPrettyJson $pools }}
{{- end }}

{{/* Job name: fixed with hooks; with a content hash without hooks (Jobs are immutable). */}}
{{- define "airflow-mlops.pools.jobName" -}}
{{- if .Values.pools.useHelmHooks }}
{{- include "airflow-mlops.componentName" (list . "pools") }}
{{- else }}
{{- $hash := printf "%s|%s|%s" (include "airflow-mlops.pools.json" .) (include "airflow-mlops.airflowChart.image" .) (include "airflow-mlops.airflowChart.metadataSecret" .) | sha256sum | trunc 8 }}
{{- include "airflow-mlops.componentName" (list . (printf "pools-%s" $hash)) }}
{{- end }}
{{- end }}

{{/* The GPU pool entry of pools.items (empty dict when absent). Output: JSON. */}}
{{- define "airflow-mlops.pools.gpuPool" -}}
{{- $found := dict }}
{{- range .Values.pools.items }}
{{- if eq .name $.Values.pools.gpuPool }}{{- $found = . }}{{- end }}
{{- end }}
{{- toJson $found }}
{{- end }}
