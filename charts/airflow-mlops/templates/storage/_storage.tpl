{{/* Helpers of storage. Claims: workspace (shared run directories) and datasets (NFS). */}}
{{- define "airflow-mlops.workspace.claimName" -}}
{{- default (include "airflow-mlops.componentName" (list . "workspace")) .Values.storage.workspace.existingClaim }}
{{- end }}

{{- define "airflow-mlops.datasets.claimName" -}}
{{- include "airflow-mlops.componentName" (list . "datasets") }}
{{- end }}

{{- define "airflow-mlops.datasets.pvName" -}}
{{- /* PersistentVolumes are cluster-scoped: the namespace keeps two releases apart. */ -}}
{{- printf "%s-%s" .Release.Namespace (include "airflow-mlops.datasets.claimName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
