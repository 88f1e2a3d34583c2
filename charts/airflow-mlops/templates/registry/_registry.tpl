{{/*
The pull secret of the private registry (Nexus) in one namespace, in the format of
`kubectl create secret docker-registry`. Rendered from registry.{server,username,password,email}
in the release namespace, and copied into the task and serving namespaces when they differ (a
pod can only use pull secrets of its own namespace). Usage:
include "airflow-mlops.registry.secret" (list $root $namespace)
*/}}
{{- define "airflow-mlops.registry.secret" -}}
{{- $root := index . 0 }}
{{- $r := $root.Values.registry }}
{{- $entry := dict "username" $r.username "password" $r.password "auth" (printf "%s:%s" $r.username $r.password | b64enc) }}
{{- if $r.email }}{{- $_ := set $entry "email" $r.email }}{{- end }}
apiVersion: v1
kind: Secret
type: kubernetes.io/dockerconfigjson
metadata:
  name: {{ include "airflow-mlops.registry.secretName" $root }}
  namespace: {{ index . 1 }}
  labels:
    {{- include "airflow-mlops.componentLabels" (list $root "registry") | nindent 4 }}
data:
  .dockerconfigjson: {{ dict "auths" (dict $r.server $entry) | toJson | b64enc }}
{{- end }}

{{/* Name of the registry pull secret (rendered by us, or the user's existing one). */}}
{{- define "airflow-mlops.registry.secretName" -}}
{{- if .Values.registry.existingSecret }}
{{- .Values.registry.existingSecret }}
{{- else }}
{{- default (include "airflow-mlops.componentName" (list . "registry")) .Values.registry.secretName }}
{{- end }}
{{- end }}
