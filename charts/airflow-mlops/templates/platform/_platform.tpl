{{/*
The platform configuration rendered as JSON (platform.json). Keys are documented in
charts/airflow-mlops/README.md and typed in files/platform.schema.json.
*/}}
{{- define "airflow-mlops.platformConfig" -}}
{{- $cfg := dict
  "schemaVersion" 1
  "chartVersion" .Chart.Version
  "release" .Release.Name
  "namespace" .Release.Namespace
-}}
{{- toPrettyJson $cfg }}
{{- end }}
