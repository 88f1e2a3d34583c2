{{/*
Helpers of the MLflow tracking server. The tracking URI helper
(`airflow-mlops.mlflow.trackingUri`) and the image helper (`airflow-mlops.images.mlflow`)
live in templates/platform/_platform.tpl.
*/}}

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
port), localhost and private addresses (kubelet probes, port-forward), plus mlflow.allowedHosts.
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
{{- $hosts = concat $hosts (list "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*" "10.*" "192.168.*") }}
{{- range $i := until 16 }}
{{- $hosts = append $hosts (printf "172.%d.*" (add 16 $i)) }}
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
