{{- /*
The environment Airflow's own components need from Secrets, checked in one place: the official
chart's `airflow.secret` is a list that Helm does not template, so the chart cannot add its
entries itself. Every feature that needs one (MLflow's credential with mlflow.auth.enabled, the
NGC connection with basecommand.enabled) names it here; a refusal prints the whole list to set:
the entries already there and every missing one, so following one message never drops the
entries another feature needs.
*/ -}}
{{- define "airflow-mlops.checks.airflowSecret" }}
{{- $V := .Values }}
{{- if $V.airflow.enabled }}
{{- $needed := list }}
{{- $a := $V.mlflow.auth }}
{{- if $a.enabled }}
{{- $client := include "airflow-mlops.mlflow.clientSecret" . }}
{{- $why := printf "mlflow.auth.enabled=true: Airflow's components need the MLflow credential of mlflow.auth.clientSecret (%s) for the DAGs' REST calls" $client }}
{{- $needed = append $needed (dict "envName" "MLFLOW_TRACKING_USERNAME" "secretName" $client "secretKey" $a.usernameKey "why" $why) }}
{{- $needed = append $needed (dict "envName" "MLFLOW_TRACKING_PASSWORD" "secretName" $client "secretKey" $a.passwordKey "why" $why) }}
{{- end }}
{{- $bc := $V.basecommand }}
{{- if and $bc.enabled $bc.connectionSecret.name }}
{{- $env := printf "AIRFLOW_CONN_%s" (upper $bc.connId) }}
{{- $why := printf "basecommand.enabled=true: airflow.secret must map the connection Secret to the env var %s in every Airflow component (values cannot be templated into the official chart)" $env }}
{{- $needed = append $needed (dict "envName" $env "secretName" $bc.connectionSecret.name "secretKey" $bc.connectionSecret.key "why" $why) }}
{{- end }}
{{- $have := list }}
{{- range ($V.airflow.secret | default list) }}
{{- if kindIs "map" . }}{{ $have = append $have . }}{{ end }}
{{- end }}
{{- $missing := list }}
{{- range $w := $needed }}
{{- $found := false }}
{{- range $e := $have }}
{{- if and (eq (toString $e.envName) $w.envName) (eq (toString $e.secretName) $w.secretName) (eq (toString (default "value" $e.secretKey)) (toString $w.secretKey)) }}{{ $found = true }}{{ end }}
{{- end }}
{{- if not $found }}{{ $missing = append $missing $w }}{{ end }}
{{- end }}
{{- if $missing }}
{{- $replaced := list }}
{{- range $w := $missing }}{{ $replaced = append $replaced $w.envName }}{{ end }}
{{- $lines := list }}
{{- range $e := $have }}
{{- if not (has (toString $e.envName) $replaced) }}
{{- $lines = append $lines (printf "    - {envName: %s, secretName: %s, secretKey: %s}" $e.envName $e.secretName (default "value" $e.secretKey)) }}
{{- end }}
{{- end }}
{{- $lacking := dict }}
{{- $whys := list }}
{{- range $w := $missing }}
{{- $entry := printf "{envName: %s, secretName: %s, secretKey: %s}" $w.envName $w.secretName $w.secretKey }}
{{- $lines = append $lines (printf "    - %s" $entry) }}
{{- if not (has $w.why $whys) }}{{ $whys = append $whys $w.why }}{{ end }}
{{- $_ := set $lacking $w.why (append (get $lacking $w.why | default list) $entry) }}
{{- end }}
{{- $reasons := list }}
{{- range $why := $whys }}
{{- $reasons = append $reasons (printf "%s, but airflow.secret lacks %s." $why (join " and " (get $lacking $why))) }}
{{- end }}
{{- include "airflow-mlops.checks.refuse" (printf "%s Set the whole list (a values file replaces it; the entries you have, with the missing ones in place of any of the same envName):\nairflow:\n  secret:\n%s" (join " " $reasons) (join "\n" $lines)) }}
{{- end }}
{{- end }}
{{- end }}
