{{/*
Helpers of the render-time checks (templates/checks/*): what values.schema.json cannot express.
*/}}

{{/*
A Kubernetes quantity as a plain number (a string to read back with float64): "500m" -> 0.5,
"1Gi" -> 1073741824, "2" -> 2. The schema has already refused anything that is not a
non-negative quantity. Usage: float64 (include "airflow-mlops.quantity" "1Gi")
*/}}
{{- define "airflow-mlops.quantity" -}}
{{- $q := toString . | trimPrefix "+" -}}
{{- $num := regexFind "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?" $q -}}
{{- $suffix := trimPrefix $num $q -}}
{{- $mult := dict "" "1" "m" "0.001" "k" "1000" "M" "1000000" "G" "1000000000" "T" "1000000000000" "P" "1000000000000000" "E" "1000000000000000000" "Ki" "1024" "Mi" "1048576" "Gi" "1073741824" "Ti" "1099511627776" "Pi" "1125899906842624" "Ei" "1152921504606846976" -}}
{{- if not (hasKey $mult $suffix) -}}
{{- fail (printf "%q is not a Kubernetes quantity (for example 500m, 2, 512Mi, 4Gi)." $q) -}}
{{- end -}}
{{- mulf (float64 (default "0" $num)) (float64 (get $mult $suffix)) -}}
{{- end }}

{{/*
Refuses a ResourceRequirements whose request is above its limit, or whose extended resource
(GPUs) has a request different from its limit (the API server refuses both, in a pod template
only when a task runs). Usage: include "airflow-mlops.checkResources" (list "mlflow.resources" $resources)
*/}}
{{- define "airflow-mlops.checkResources" -}}
{{- $path := index . 0 }}
{{- $r := index . 1 | default dict }}
{{- $requests := $r.requests | default dict }}
{{- $limits := $r.limits | default dict }}
{{- range $name, $limit := $limits }}
{{- if hasKey $requests $name }}
{{- $request := get $requests $name }}
{{- $req := float64 (include "airflow-mlops.quantity" $request) }}
{{- $lim := float64 (include "airflow-mlops.quantity" $limit) }}
{{- if gt $req $lim }}
{{- fail (printf "%s.requests.%s=%v is above %s.limits.%s=%v: a request must be <= its limit (the API server refuses the pod)." $path $name $request $path $name $limit) }}
{{- end }}
{{- $extended := and (contains "/" $name) (not (hasPrefix "kubernetes.io/" $name)) }}
{{- if and $extended (ne $req $lim) }}
{{- fail (printf "%s.requests.%s=%v differs from %s.limits.%s=%v: an extended resource cannot be overcommitted, its request must equal its limit (or set only the limit)." $path $name $request $path $name $limit) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
