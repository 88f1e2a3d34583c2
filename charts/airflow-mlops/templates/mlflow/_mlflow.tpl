{{/*
Helpers of the MLflow tracking server: its name, image, tracking URI and service account.
*/}}

{{/* The MLflow image (`mlflow.image.{repository,tag}`, prefixed with images.prefix). */}}
{{- define "airflow-mlops.images.mlflow" -}}
{{- include "airflow-mlops.image" (list . .Values.mlflow.image.repository .Values.mlflow.image.tag) }}
{{- end }}

{{/*
MLflow tracking URI seen by Airflow and task pods: the chart's MLflow Service, or
`mlflow.externalTrackingUri` when MLflow is disabled.
*/}}
{{- define "airflow-mlops.mlflow.trackingUri" -}}
{{- if .Values.mlflow.enabled }}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "airflow-mlops.componentName" (list . "mlflow")) .Release.Namespace .Values.mlflow.service.port }}
{{- else }}
{{- .Values.mlflow.externalTrackingUri }}
{{- end }}
{{- end }}

{{- define "airflow-mlops.mlflow.name" -}}
{{- include "airflow-mlops.componentName" (list . "mlflow") }}
{{- end }}

{{- define "airflow-mlops.mlflow.serviceAccountName" -}}
{{- if .Values.mlflow.serviceAccount.create }}
{{- default (include "airflow-mlops.mlflow.name" .) .Values.mlflow.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.mlflow.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The claim holding artifacts (type pvc) and/or the sqlite database (type sqlite). */}}
{{- define "airflow-mlops.mlflow.needsVolume" -}}
{{- if or (eq .Values.mlflow.artifacts.type "pvc") (eq .Values.mlflow.backendStore.type "sqlite") }}true{{- end }}
{{- end }}

{{- define "airflow-mlops.mlflow.claimName" -}}
{{- default (include "airflow-mlops.mlflow.name" .) .Values.mlflow.persistence.existingClaim }}
{{- end }}

{{/* Where the volume is mounted in the server container. */}}
{{- define "airflow-mlops.mlflow.dataDir" -}}/mlflow{{- end }}

{{/* `--artifacts-destination` of the server (artifacts are always proxied: --serve-artifacts). */}}
{{- define "airflow-mlops.mlflow.artifactsDestination" -}}
{{- $a := .Values.mlflow.artifacts }}
{{- if eq $a.type "s3" }}
{{- $path := trimAll "/" $a.s3.path }}
{{- if $path }}{{ printf "s3://%s/%s" $a.s3.bucket $path }}{{ else }}{{ printf "s3://%s" $a.s3.bucket }}{{ end }}
{{- else }}
{{- printf "%s/artifacts" (include "airflow-mlops.mlflow.dataDir" .) }}
{{- end }}
{{- end }}

{{/*
Host headers the server accepts (MLflow 3 rejects others with 403, DNS-rebinding
protection): the ingress host, every in-cluster name of the Service (with and without a
port), localhost and private addresses (clients that reach a pod by its IP, port-forward),
plus mlflow.allowedHosts. The probes need none of it: MLflow answers /health whatever the Host.
*/}}
{{- define "airflow-mlops.mlflow.allowedHosts" -}}
{{- $svc := include "airflow-mlops.mlflow.name" . }}
{{- $ns := .Release.Namespace }}
{{- $hosts := list }}
{{- if .Values.mlflow.ingress.enabled }}
{{- $hosts = append $hosts .Values.mlflow.ingress.host }}
{{- $hosts = append $hosts (printf "%s:*" .Values.mlflow.ingress.host) }}
{{- end }}
{{- range (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns)) }}
{{- $hosts = append $hosts . }}
{{- $hosts = append $hosts (printf "%s:*" .) }}
{{- end }}
{{- /* loopback, RFC 1918, the shared space 100.64.0.0/10 (pod networks of some managed
clusters) and IPv6 loopback and unique-local addresses (fc00::/7) as Host headers carry them:
in brackets, which fnmatch reads as a class unless written "[[]" */ -}}
{{- $hosts = concat $hosts (list "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*" "[::1]" "[[]::1]:*" "10.*" "192.168.*" "[[]fc*" "[[]fd*") }}
{{- range $i := until 16 }}
{{- $hosts = append $hosts (printf "172.%d.*" (add 16 $i)) }}
{{- end }}
{{- range $i := until 64 }}
{{- $hosts = append $hosts (printf "100.%d.*" (add 64 $i)) }}
{{- end }}
{{- $hosts = concat $hosts .Values.mlflow.allowedHosts }}
{{- join "," (uniq $hosts) }}
{{- end }}

{{/* Origins allowed to send state-changing API calls: the UI behind the ingress, plus extras. */}}
{{- define "airflow-mlops.mlflow.corsAllowedOrigins" -}}
{{- $origins := list }}
{{- if .Values.mlflow.ingress.enabled }}
{{- $origins = append $origins (printf "%s://%s" (ternary "https" "http" .Values.mlflow.ingress.tls.enabled) .Values.mlflow.ingress.host) }}
{{- end }}
{{- join "," (uniq (concat $origins .Values.mlflow.corsAllowedOrigins)) }}
{{- end }}

{{/* Labels of the pods allowed to reach MLflow, as NetworkPolicy peers (a YAML list). */}}
{{- define "airflow-mlops.mlflow.networkPolicyPeers" -}}
{{- $np := .Values.mlflow.networkPolicy }}
# Airflow's own pods (official chart labels: tier=airflow, release=<release>)
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .Release.Namespace }}
  podSelector:
    matchLabels:
      tier: airflow
      release: {{ .Release.Name }}
# Task pods: our pod templates' labels + the label the KubernetesPodOperator puts on its pods
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ include "airflow-mlops.tasks.namespace" . }}
  podSelector:
    matchLabels:
      app.kubernetes.io/component: task
      mlops.airflow.apache.org/release: {{ .Release.Name }}
      kubernetes_pod_operator: "True"
{{- if .Values.serving.enabled }}
# Model servers download their model through the tracking server
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ include "airflow-mlops.serving.namespace" . }}
  podSelector:
    matchLabels:
      app.kubernetes.io/component: model-serving
      mlops.airflow.apache.org/release: {{ .Release.Name }}
{{- end }}
{{- if .Values.mlflow.ingress.enabled }}
# The ingress controller
- namespaceSelector:
    {{- toYaml $np.ingressController.namespaceSelector | nindent 4 }}
  {{- with $np.ingressController.podSelector }}
  podSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- with $np.extraFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The backend store URI as environment (MLFLOW_BACKEND_STORE_URI, never on the command line),
for the server and the auth-config init container. $m is .Values.mlflow.
*/}}
{{- define "airflow-mlops.mlflow.backendStoreEnv" -}}
{{- $m := .Values.mlflow }}
{{- $dataDir := include "airflow-mlops.mlflow.dataDir" . }}
{{- if eq $m.backendStore.type "existingSecret" }}
- name: MLFLOW_BACKEND_STORE_URI
  valueFrom:
    secretKeyRef:
      name: {{ $m.backendStore.existingSecret }}
      key: {{ $m.backendStore.uriKey }}
{{- else if eq $m.backendStore.type "devDatabase" }}
- name: MLOPS_DEV_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.devDatabase.auth.existingSecret }}
      key: {{ .Values.devDatabase.auth.passwordKey }}
{{- /* the driver named: SQLAlchemy 2.1 (the image's) maps a bare postgresql:// to psycopg 3,
which the image does not ship; it ships psycopg2 (images/mlflow/requirements.lock) */}}
- name: MLFLOW_BACKEND_STORE_URI
  value: {{ printf "postgresql+psycopg2://%s:$(MLOPS_DEV_DATABASE_PASSWORD)@%s:5432/%s" .Values.devDatabase.auth.username (include "airflow-mlops.devDatabase.host" .) $m.backendStore.devDatabase.database | quote }}
{{- else }}
- name: MLFLOW_BACKEND_STORE_URI
  value: {{ printf "sqlite:///%s/mlflow.db" $dataDir | quote }}
{{- end }}
{{- end }}

{{/* Where the basic-auth app's ini file is written (the /tmp emptyDir). */}}
{{- define "airflow-mlops.mlflow.authConfigPath" -}}/tmp/basic_auth.ini{{- end }}

{{/* Environment shared by the auth-config init container and the server (auth enabled). */}}
{{- define "airflow-mlops.mlflow.authEnv" -}}
- name: MLFLOW_AUTH_CONFIG_PATH
  value: {{ include "airflow-mlops.mlflow.authConfigPath" . }}
- name: MLOPS_AUTH_DEFAULT_PERMISSION
  value: {{ .Values.mlflow.auth.defaultPermission | quote }}
{{- end }}

{{/*
Writes the basic-auth ini: the user store shares the backend store's database (its own tables
and alembic_version_auth), the default permission, the authorization function. "%" is doubled
(configparser interpolation). Admin credentials and the Flask key stay in the environment
(MLFLOW_AUTH_ADMIN_USERNAME/PASSWORD, MLFLOW_FLASK_SERVER_SECRET_KEY), read by MLflow itself.
*/}}
{{- define "airflow-mlops.mlflow.authConfigScript" -}}
import configparser, os
cfg = configparser.ConfigParser(interpolation=None)
cfg["mlflow"] = {
    "default_permission": os.environ["MLOPS_AUTH_DEFAULT_PERMISSION"],
    "database_uri": os.environ["MLFLOW_BACKEND_STORE_URI"].replace("%", "%%"),
    "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
}
path = os.environ["MLFLOW_AUTH_CONFIG_PATH"]
with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    cfg.write(f)
print("auth-config: wrote", path)
{{- end }}

{{/* The Secret holding the platform clients' MLflow credential (mlflow.auth.clientSecret). */}}
{{- define "airflow-mlops.mlflow.clientSecret" -}}
{{- default .Values.mlflow.auth.existingSecret .Values.mlflow.auth.clientSecret }}
{{- end }}

{{/*
MLFLOW_TRACKING_USERNAME/PASSWORD of an MLflow client (task pods, model servers) from the
client Secret in the pod's namespace; nothing when mlflow.auth.enabled is false.
*/}}
{{- define "airflow-mlops.mlflow.clientEnv" -}}
{{- if .Values.mlflow.auth.enabled }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow-mlops.mlflow.clientSecret" . }}
      key: {{ .Values.mlflow.auth.usernameKey }}
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow-mlops.mlflow.clientSecret" . }}
      key: {{ .Values.mlflow.auth.passwordKey }}
{{- end }}
{{- end }}
