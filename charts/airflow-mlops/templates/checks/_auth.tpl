{{- /*
Checks of the authentication values (prints one message per refusal, see check-values.yaml): MLflow's basic-auth Secret and the
model endpoints' ingress authentication (the MLflow credential in `airflow.secret`: _airflow-secret.tpl).
*/ -}}
{{- define "airflow-mlops.checks.auth" }}
{{- $a := .Values.mlflow.auth }}
{{- if $a.enabled }}
{{- if and .Values.mlflow.enabled (not $a.existingSecret) }}
{{- include "airflow-mlops.checks.refuse" (printf "mlflow.auth.existingSecret is required with mlflow.auth.enabled=true: a Secret in namespace %s with keys %s (admin user), %s (admin password, at least 12 characters) and %s (Flask secret key), see the chart README (Authentication). To run MLflow without authentication set mlflow.auth.enabled=false explicitly." .Release.Namespace $a.usernameKey $a.passwordKey $a.secretKeyKey) }}
{{- end }}
{{- end }}
{{- $sa := .Values.serving.auth }}
{{- if and .Values.serving.enabled $sa.enabled }}
{{- if not $sa.annotations }}
{{- include "airflow-mlops.checks.refuse" "serving.auth.enabled=true needs serving.auth.annotations: the annotations that make your ingress controller require a credential (the default is ingress-nginx basic auth). To serve models without authentication set serving.auth.enabled=false explicitly." }}
{{- end }}
{{- end }}
{{- end }}
