{{/*
Placement of a pod that runs with a profile: node selector (gpu.nodeSelector for GPU
profiles, then the profile's), tolerations (gpu.tolerations, then the profile's), affinity,
runtime and priority class, the scheduler (the GPU-packing scheduler's name for GPU profiles
when gpuScheduler.enabled, airflow-mlops.gpuScheduler.podSchedulerName), and the resources with
the GPU limit (gpu.resourceName = gpus) added. The one definition used by the task pod templates and the model servers.
Usage: include "airflow-mlops.placement" (list $root $profile $resources) | fromJson
*/}}
{{- define "airflow-mlops.placement" -}}
{{- $root := index . 0 }}
{{- $p := index . 1 | default dict }}
{{- $resources := deepCopy (index . 2 | default dict) }}
{{- $V := $root.Values }}
{{- $gpus := int (default 0 $p.gpus) }}
{{- $nodeSelector := dict }}
{{- $tolerations := list }}
{{- if gt $gpus 0 }}
{{- $nodeSelector = merge $nodeSelector (deepCopy ($V.gpu.nodeSelector | default dict)) }}
{{- $tolerations = concat $tolerations ($V.gpu.tolerations | default list) }}
{{- $limits := $resources.limits | default dict }}
{{- $_ := set $limits $V.gpu.resourceName (toString $gpus) }}
{{- $_ := set $resources "limits" $limits }}
{{- end }}
{{- $nodeSelector = mergeOverwrite $nodeSelector (deepCopy ($p.nodeSelector | default dict)) }}
{{- $tolerations = concat $tolerations ($p.tolerations | default list) }}
{{- toJson (dict
  "gpus" $gpus
  "nodeSelector" $nodeSelector
  "tolerations" $tolerations
  "affinity" ($p.affinity | default dict)
  "runtimeClassName" ($p.runtimeClassName | default "")
  "priorityClassName" ($p.priorityClassName | default "")
  "schedulerName" (include "airflow-mlops.gpuScheduler.podSchedulerName" (list $root $gpus))
  "resources" $resources) }}
{{- end }}

{{/*
The placement fields of a pod spec (scheduler, nodeSelector, affinity, tolerations, runtime and
priority class), from the output of airflow-mlops.placement. Usage: include "airflow-mlops.placementSpec" $placement
*/}}
{{- define "airflow-mlops.placementSpec" -}}
{{- with .schedulerName }}
schedulerName: {{ . }}
{{- end }}
{{- with .runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
One pod template per profile (the `pod_template_file` of KubernetesPodOperator tasks).
The operator merges its own container settings into the `base` container; everything the
operator cannot set per task (placement, tolerations, pull secrets, volumes, security
context) comes from here. Usage: include "airflow-mlops.podTemplate" (list . "gpu-1" $profile)
*/}}
{{- define "airflow-mlops.podTemplate" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $p := index . 2 }}
{{- $V := $root.Values }}
{{- $placement := include "airflow-mlops.placement" (list $root $p $p.resources) | fromJson }}
{{- $gpus := int $placement.gpus }}
{{- $resources := $placement.resources }}
apiVersion: v1
kind: Pod
metadata:
  name: {{ printf "mlops-task-%s" $name | trunc 63 | trimSuffix "-" }}
  labels:
    app.kubernetes.io/part-of: airflow-mlops
    app.kubernetes.io/managed-by: airflow
    mlops.airflow.apache.org/release: {{ $root.Release.Name }}
    app.kubernetes.io/component: task
    mlops.airflow.apache.org/profile: {{ $name | quote }}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  {{- with $V.tasks.serviceAccountName }}
  serviceAccountName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $V.tasks.podSecurityContext | nindent 4 }}
  {{- if $V.registry.enabled }}
  imagePullSecrets:
    - name: {{ include "airflow-mlops.registry.secretName" $root }}
  {{- end }}
  {{- with include "airflow-mlops.placementSpec" $placement | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  containers:
    - name: base
      image: {{ include "airflow-mlops.images.trainer" $root }}
      imagePullPolicy: {{ $V.images.pullPolicy }}
      securityContext:
        {{- toYaml $V.tasks.containerSecurityContext | nindent 8 }}
      env:
        - name: HOME
          value: /tmp
        - name: MLFLOW_TRACKING_URI
          value: {{ include "airflow-mlops.mlflow.trackingUri" $root | quote }}
        {{- with include "airflow-mlops.mlflow.clientEnv" $root }}
        {{- . | nindent 8 }}
        {{- end }}
        - name: MLOPS_PROFILE
          value: {{ $name | quote }}
        - name: MLOPS_GPUS
          value: {{ $gpus | quote }}
        {{- with $V.tasks.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if $V.storage.workspace.enabled }}
        - name: workspace
          mountPath: /workspace
          subPathExpr: $(MLOPS_WORKSPACE_SUBPATH)
        {{- end }}
        {{- if $V.storage.nfs.enabled }}
        - name: datasets
          mountPath: /data
          readOnly: {{ $V.storage.nfs.readOnly }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $V.tasks.tmpSizeLimit }}
    {{- if $V.storage.workspace.enabled }}
    - name: workspace
      persistentVolumeClaim:
        claimName: {{ include "airflow-mlops.workspace.claimName" $root }}
    {{- end }}
    {{- if $V.storage.nfs.enabled }}
    - name: datasets
      persistentVolumeClaim:
        claimName: {{ include "airflow-mlops.datasets.claimName" $root }}
        readOnly: {{ $V.storage.nfs.readOnly }}
    {{- end }}
{{- end }}
