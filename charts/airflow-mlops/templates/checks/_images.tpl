{{- /*
Image references of our components and the registry they come from, checked here rather than
by values.schema.json patterns, whose refusal would print only the regular expression: each
message says the key, the value and what is allowed.
*/ -}}
{{- define "airflow-mlops.checks.images" }}
{{- $V := .Values }}
{{- $host := "((localhost|[a-zA-Z0-9-]+(\\.[a-zA-Z0-9-]+)+)(:[0-9]{1,5})?|[a-zA-Z0-9-]+:[0-9]{1,5})" }}
{{- $plainHost := "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*" }}
{{- $path := "(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*" }}
{{- range $key, $tag := dict "images.trainer.tag" $V.images.trainer.tag "mlflow.image.tag" $V.mlflow.image.tag "devDatabase.image.tag" $V.devDatabase.image.tag }}
{{- $t := toString $tag }}
{{- if eq $t "latest" }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%q: a moving tag is refused, the cluster would run whatever was pushed last and two nodes could run different images. Allowed: a fixed tag such as 0.1.0 or 3.1.8-mlops1 (letters, digits, '_', '.', '-', at most 128 characters, not starting with '.' or '-')." $key $t) }}
{{- else if not (regexMatch "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$" $t) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%q is not an image tag. Allowed: letters, digits, '_', '.' and '-', at most 128 characters, not starting with '.' or '-' (for example 0.1.0)." $key $t) }}
{{- end }}
{{- end }}
{{- $server := toString $V.registry.server }}
{{- $serverOk := or (not $server) (regexMatch (printf "^(%s|%s)$" $host $plainHost) $server) }}
{{- if not $serverOk }}
{{- include "airflow-mlops.checks.refuse" (printf "registry.server=%q is not a registry host. Allowed: a host name or IP with an optional port and nothing else, no scheme (https://), no path, no user (for example nexus.example.com:8443)." $server) }}
{{- end }}
{{- $prefix := toString $V.images.prefix }}
{{- if and $prefix (not (regexMatch (printf "^%s%s/?$" $host $path) $prefix)) }}
{{- include "airflow-mlops.checks.refuse" (printf "images.prefix=%q is not a registry host and path. Allowed: a host with a dot or a port (for example nexus.example.com:8443/mlops or localhost:5000), then lowercase path segments; no scheme (https://), no tag, no upper case. Empty = bare image names." $prefix) }}
{{- else if and $prefix $V.registry.enabled $server $serverOk }}
{{- $prefixHost := first (splitList "/" $prefix) }}
{{- if ne $prefixHost $server }}
{{- include "airflow-mlops.checks.refuse" (printf "images.prefix=%q pulls from %s but registry.server=%q: the pull secret the chart gives task pods is for %s, so pulls from %s would be refused (or go to another registry). Set images.prefix to %s/<path> or registry.server to %s." $prefix $prefixHost $server $server $prefixHost $server $prefixHost) }}
{{- end }}
{{- end }}
{{- end }}
