{{/* Helpers of the pools Job. */}}

{{/* pools.json for `airflow pools import` ({name: {slots, description, include_deferred}}). */}}
{{- define "airflow-mlops.pools.json" -}}
{{- $pools := dict }}
{{- range .Values.pools.items }}
{{- $_ := set $pools .name (dict "slots" (int .slots) "description" (default "" .description) "include_deferred" (default false .includeDeferred)) }}
{{- end }}
{{- toPrettyJson $pools }}
{{- end }}

{{/* The Airflow image the official chart uses (airflow.images.airflow or the defaults). */}}
{{- define "airflow-mlops.pools.airflowImage" -}}
{{- $af := .Values.airflow | default dict }}
{{- $repo := dig "images" "airflow" "repository" "" $af | default (dig "defaultAirflowRepository" "apache/airflow" $af) }}
{{- $tag := dig "images" "airflow" "tag" "" $af | default (dig "defaultAirflowTag" .Chart.AppVersion $af) }}
{{- printf "%s:%s" $repo (toString $tag) }}
{{- end }}

{{/*
Secret holding the metadata database URI (key `connection`), as the official chart names it
(templates/secrets/metadata-connection-secret.yaml): `airflow.data.metadataSecretName`, else
`<airflow fullname>-metadata`, i.e. `<release>-airflow-metadata` for a release whose name does
not contain "airflow".
*/}}
{{- define "airflow-mlops.pools.metadataSecret" -}}
{{- $af := .Values.airflow | default dict }}
{{- $explicit := dig "data" "metadataSecretName" "" $af }}
{{- if $explicit }}
{{- $explicit }}
{{- else }}
{{- printf "%s-metadata" (include "airflow-mlops.airflow.fullname" .) }}
{{- end }}
{{- end }}

{{/* Job name: fixed with hooks; with a content hash without hooks (Jobs are immutable). */}}
{{- define "airflow-mlops.pools.jobName" -}}
{{- if .Values.pools.useHelmHooks }}
{{- include "airflow-mlops.componentName" (list . "pools") }}
{{- else }}
{{- $hash := printf "%s|%s|%s" (include "airflow-mlops.pools.json" .) (include "airflow-mlops.pools.airflowImage" .) (include "airflow-mlops.pools.metadataSecret" .) | sha256sum | trunc 8 }}
{{- include "airflow-mlops.componentName" (list . (printf "pools-%s" $hash)) }}
{{- end }}
{{- end }}
