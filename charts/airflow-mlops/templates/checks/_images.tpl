{{- /*
The registry our images come from and the registry the chart's pull secret is for must be the
same host. The form of each value (image tags, never `latest`; registry.server; images.prefix) is
a rule of the values' schema (files/values.schema.json), applied before this check.
*/ -}}
{{- define "airflow-mlops.checks.images" }}
{{- $V := .Values }}
{{- $server := toString $V.registry.server }}
{{- $prefix := toString $V.images.prefix }}
{{- if and $prefix $V.registry.enabled $server }}
{{- $prefixHost := first (splitList "/" $prefix) }}
{{- if ne $prefixHost $server }}
{{- include "airflow-mlops.checks.refuse" (printf "images.prefix=%q pulls from %s but registry.server=%q: the pull secret the chart gives task pods is for %s, so pulls from %s would be refused (or go to another registry). Set images.prefix to %s/<path> or registry.server to %s." $prefix $prefixHost $server $server $prefixHost $server $prefixHost) }}
{{- end }}
{{- end }}
{{- end }}
