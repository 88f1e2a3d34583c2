{{- /*
Every host of every Ingress the umbrella renders, ours and the official chart's
(airflow.ingress.*), must be a DNS name: the API server refuses the Ingress otherwise, at install
time. The Ingresses are rendered here by their own templates (never a copy of their logic) and
their hosts read back.
*/ -}}
{{- define "airflow-mlops.checks.ingressHosts" }}
{{- $docs := list }}
{{- range $file := list "mlflow/mlflow-ingress.yaml" "serving/serving-ingress.yaml" }}
{{- $docs = append $docs (dict "from" (printf "templates/%s" $file) "text" (include (printf "%s/templates/%s" $.Chart.Name $file) $)) }}
{{- end }}
{{- if include "airflow-mlops.airflowChart.enabled" . }}
{{- $sc := .Subcharts.airflow }}
{{- range $file := list "api-server/api-server-ingress.yaml" "webserver/webserver-ingress.yaml" "flower/flower-ingress.yaml" "pgbouncer/pgbouncer-ingress.yaml" "statsd/statsd-ingress.yaml" }}
{{- $docs = append $docs (dict "from" (printf "the official chart's %s" $file) "text" (include (printf "%s/charts/airflow/templates/%s" $.Chart.Name $file) $sc)) }}
{{- end }}
{{- end }}
{{- $dns := "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" }}
{{- range $d := $docs }}
{{- range $doc := regexSplit "(?m)^---\\s*$" $d.text -1 }}
{{- $obj := fromYaml $doc }}
{{- if eq (toString (get $obj "kind")) "Ingress" }}
{{- $hosts := list }}
{{- range (dig "spec" "rules" list $obj) }}{{ if hasKey . "host" }}{{ $hosts = append $hosts .host }}{{ end }}{{ end }}
{{- range (dig "spec" "tls" list $obj) }}{{ range (.hosts | default list) }}{{ $hosts = append $hosts . }}{{ end }}{{ end }}
{{- range $h := uniq $hosts }}
{{- $host := toString $h }}
{{- if or (not (regexMatch $dns $host)) (gt (len $host) 253) }}
{{- include "airflow-mlops.checks.refuse" (printf "ingress host %q (Ingress %s, from %s): not a DNS name, so the API server would refuse the Ingress at install. Allowed: lowercase letters, digits, '-' and '.', labels starting and ending with a letter or digit, at most 253 characters, optionally starting with '*.' (for example airflow.example.com); no scheme, port, path or spaces. Set the host key of that Ingress (airflow.ingress.<component>.hosts for the official chart's, mlflow.ingress.host, serving.domain)." $host (dig "metadata" "name" "?" $obj) $d.from) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
