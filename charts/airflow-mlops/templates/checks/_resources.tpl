{{- /*
Resources and pod-template settings values.schema.json cannot judge (prints one message per refusal, see check-values.yaml): requests
above limits, GPU requests set by hand. The pod templates are ConfigMap data the API server
never validates; without these checks such values install and fail only when a task runs.
*/ -}}
{{- define "airflow-mlops.checks.resources" }}
{{- $V := .Values }}
{{- $gpu := $V.gpu.resourceName }}
{{- range $name, $p := $V.profiles }}
{{- if kindIs "map" $p }}
{{- $r := $p.resources | default dict }}
{{- range $section := list "requests" "limits" }}
{{- if hasKey (get $r $section | default dict) $gpu }}
{{- include "airflow-mlops.checks.refuse" (printf "profiles.%s.resources.%s must not set %s: the chart sets the GPU limit from profiles.%s.gpus (%v)." $name $section $gpu $name $p.gpus) }}
{{- end }}
{{- end }}
{{- include "airflow-mlops.checkResources" (list (printf "profiles.%s.resources" $name) $r) }}
{{- end }}
{{- end }}
{{- include "airflow-mlops.checkResources" (list "pools.resources" $V.pools.resources) }}
{{- include "airflow-mlops.checkResources" (list "devDatabase.resources" $V.devDatabase.resources) }}
{{- include "airflow-mlops.checkResources" (list "mlflow.resources" $V.mlflow.resources) }}
{{- include "airflow-mlops.checkResources" (list "serving.resources" $V.serving.resources) }}
{{- range $i, $model := $V.serving.models }}
{{- with $model.resources }}
{{- include "airflow-mlops.checkResources" (list (printf "serving.models[%d].resources" $i) .) }}
{{- end }}
{{- end }}
{{- end }}
