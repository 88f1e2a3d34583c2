{{- /*
Checks of the MLflow tracking server and model serving values (prints one message per refusal, see check-values.yaml): every
refusal names the key and what to set.
*/ -}}
{{- define "airflow-mlops.checks.mlflow" }}
{{- $m := .Values.mlflow }}
{{- $s := .Values.serving }}
{{- if $m.enabled }}
{{- $bs := $m.backendStore }}
{{- if eq $bs.type "existingSecret" }}
{{- if not $bs.existingSecret }}
{{- include "airflow-mlops.checks.refuse" "mlflow.backendStore.existingSecret is required with mlflow.backendStore.type=existingSecret: the name of a Secret whose key mlflow.backendStore.uriKey holds the database URI (postgresql://user:password@host:5432/mlflow). For a development cluster use type devDatabase or sqlite." }}
{{- end }}
{{- else if eq $bs.type "devDatabase" }}
{{- if not .Values.devDatabase.enabled }}
{{- include "airflow-mlops.checks.refuse" "mlflow.backendStore.type=devDatabase needs devDatabase.enabled=true (the development PostgreSQL); in production set mlflow.backendStore.type=existingSecret and mlflow.backendStore.existingSecret." }}
{{- end }}
{{- if not (has $bs.devDatabase.database .Values.devDatabase.databases) }}
{{- include "airflow-mlops.checks.refuse" (printf "mlflow.backendStore.devDatabase.database %q is not created by the development database: add it to devDatabase.databases (now %v)." $bs.devDatabase.database .Values.devDatabase.databases) }}
{{- end }}
{{- else if eq $bs.type "sqlite" }}
{{- if not $bs.sqlite.developmentOnly }}
{{- include "airflow-mlops.checks.refuse" "mlflow.backendStore.type=sqlite keeps MLflow's runs and model registry in a file on the MLflow volume (one replica, no concurrent writers, lost with the volume): it is refused unless mlflow.backendStore.sqlite.developmentOnly=true says this is a development setup. Otherwise set mlflow.backendStore.type=existingSecret with mlflow.backendStore.existingSecret (a Secret whose key mlflow.backendStore.uriKey holds the PostgreSQL URI), or devDatabase on a development cluster." }}
{{- end }}
{{- if gt (int $m.replicas) 1 }}
{{- include "airflow-mlops.checks.refuse" (printf "mlflow.replicas=%d needs a shared database: sqlite (mlflow.backendStore.type=sqlite) allows only 1 replica; use type existingSecret." (int $m.replicas)) }}
{{- end }}
{{- end }}
{{- if eq $m.artifacts.type "s3" }}
{{- if or (not $m.artifacts.s3.bucket) (not $m.artifacts.s3.existingSecret) }}
{{- include "airflow-mlops.checks.refuse" (printf "mlflow.artifacts.type=s3 needs mlflow.artifacts.s3.bucket (now %q) and mlflow.artifacts.s3.existingSecret (a Secret with keys %s and %s, now %q)." $m.artifacts.s3.bucket $m.artifacts.s3.accessKeyIdKey $m.artifacts.s3.secretAccessKeyKey $m.artifacts.s3.existingSecret) }}
{{- end }}
{{- end }}
{{- if and (include "airflow-mlops.mlflow.needsVolume" .) (gt (int $m.replicas) 1) (eq $m.persistence.accessMode "ReadWriteOnce") }}
{{- include "airflow-mlops.checks.refuse" (printf "mlflow.replicas=%d cannot share the ReadWriteOnce volume of mlflow.persistence: use mlflow.artifacts.type=s3 or mlflow.persistence.accessMode=ReadWriteMany." (int $m.replicas)) }}
{{- end }}
{{- if and $m.ingress.enabled (not $m.ingress.host) }}
{{- include "airflow-mlops.checks.refuse" "mlflow.ingress.host is required when mlflow.ingress.enabled=true (for example mlflow.example.com): it is also added to MLflow's allowed Host headers." }}
{{- end }}
{{- if and $m.ingress.enabled $m.networkPolicy.enabled (not $m.networkPolicy.ingressController.namespaceSelector) }}
{{- include "airflow-mlops.checks.refuse" "mlflow.networkPolicy.ingressController.namespaceSelector must select the ingress controller's namespace (for example matchLabels: {kubernetes.io/metadata.name: ingress-nginx}); an empty selector would admit every namespace." }}
{{- end }}
{{- else }}
{{- if not $m.externalTrackingUri }}
{{- include "airflow-mlops.checks.refuse" "mlflow.externalTrackingUri is required when mlflow.enabled=false: task pods and Airflow need a tracking server (for example http://mlflow.ml.svc.cluster.local:5000)." }}
{{- end }}
{{- end }}

{{- if $s.enabled }}
{{- $servingNs := include "airflow-mlops.serving.namespace" . }}
{{- $tasksNs := include "airflow-mlops.tasks.namespace" . }}
{{- if gt (len $servingNs) 63 }}
{{- include "airflow-mlops.checks.refuse" (printf "serving.namespace: the default <release namespace>-serving (%q) is longer than 63 characters: set serving.namespace to a namespace of at most 63 characters made for the model servers." $servingNs) }}
{{- end }}
{{- if eq $servingNs .Release.Namespace }}
{{- include "airflow-mlops.checks.refuse" (printf "serving.namespace must not be the release namespace %q: the serving Role creates, patches and deletes Deployments, Services and Ingresses in its namespace and must not reach MLflow or Airflow. Create a namespace for the model servers (for example %s-serving, the default when serving.namespace is empty) and set serving.namespace to it." .Release.Namespace .Release.Namespace) }}
{{- end }}
{{- if eq $servingNs $tasksNs }}
{{- include "airflow-mlops.checks.refuse" (printf "serving.namespace must not be the task namespace %q (tasks.namespace): task pods run arbitrary training code next to what the serving Role may change. Use a namespace of its own (for example %s-serving, the default when serving.namespace is empty)." $tasksNs .Release.Namespace) }}
{{- end }}
{{- if not $s.domain }}
{{- include "airflow-mlops.checks.refuse" "serving.domain is required when serving.enabled=true: each model is served at <model>.<serving.domain> (for example models.example.com)." }}
{{- end }}
{{- $seen := dict }}
{{- range $i, $model := $s.models }}
{{- if not $model.name }}
{{- include "airflow-mlops.checks.refuse" (printf "serving.models[%d].name is required (a lowercase DNS label, for example iris)." $i) }}
{{- end }}
{{- if not $model.modelUri }}
{{- include "airflow-mlops.checks.refuse" (printf "serving.models[%d] (%s): modelUri is required, for example models:/%s@champion." $i $model.name $model.name) }}
{{- end }}
{{- if hasKey $seen $model.name }}
{{- include "airflow-mlops.checks.refuse" (printf "serving.models[%d]: the model name %q is listed twice." $i $model.name) }}
{{- end }}
{{- $_ := set $seen $model.name true }}
{{- $profile := default $.Values.defaultProfile $model.profile }}
{{- if not (index $.Values.profiles $profile) }}
{{- include "airflow-mlops.checks.refuse" (printf "serving.models[%d] (%s): profile %q is not defined; allowed: %s." $i $model.name $profile (join ", " (keys $.Values.profiles | sortAlpha))) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
