{{/*
Peers shared by the default-deny NetworkPolicies (templates/<component>/<component>-networkpolicy.yaml).
*/}}

{{/* Egress to the cluster DNS (networkPolicies.dns), UDP and TCP 53. */}}
{{- define "airflow-mlops.networkPolicy.dnsEgress" -}}
- to:
    - namespaceSelector:
        {{- toYaml .Values.networkPolicies.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .Values.networkPolicies.dns.podSelector | nindent 8 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}

{{/* Egress to the MLflow tracking server of this release (nothing when MLflow is external). */}}
{{- define "airflow-mlops.networkPolicy.mlflowEgress" -}}
{{- if .Values.mlflow.enabled }}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Release.Namespace }}
      podSelector:
        matchLabels:
          {{- include "airflow-mlops.componentSelectorLabels" (list . "mlflow") | nindent 10 }}
  ports:
    - port: {{ .Values.mlflow.service.port }}
      protocol: TCP
{{- end }}
{{- end }}

{{/* Airflow's own pods of this release (official chart labels tier=airflow, release=<release>). */}}
{{- define "airflow-mlops.networkPolicy.airflowPeer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .Release.Namespace }}
  podSelector:
    matchLabels:
      tier: airflow
      release: {{ .Release.Name }}
{{- end }}
