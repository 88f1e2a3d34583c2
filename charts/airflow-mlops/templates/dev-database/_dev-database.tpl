{{/* Helpers of the development PostgreSQL. */}}
{{- define "airflow-mlops.devDatabase.name" -}}
{{- include "airflow-mlops.componentName" (list . "dev-database") }}
{{- end }}

{{/* Host name of the development database, for the connection URI Secret. */}}
{{- define "airflow-mlops.devDatabase.host" -}}
{{- printf "%s.%s.svc.cluster.local" (include "airflow-mlops.devDatabase.name" .) .Release.Namespace }}
{{- end }}
