{{/*
Helpers of model serving. The model-server Deployment is defined once, by
airflow-mlops.serving.deployment: the chart renders it for every entry of `serving.models`
(managed by Helm, names `<fullname>-serving-<model>`), and once as a template in the platform
ConfigMap (`serving-deployment.yaml`, managed-by `airflow`) that the ml_serving DAG
(dags/mlops_platform/serving.py) fills in with what varies per model: name, model URI,
replicas. Both carry the same labels but `app.kubernetes.io/managed-by`, so selectors stay
disjoint and Helm and the DAG never manage the same object.
*/}}

{{/*
Namespace of the model servers, their Role/RoleBinding, NetworkPolicy and pull secret:
serving.namespace, default `<release namespace>-serving`. Never the release namespace nor the
task namespace (templates/checks/check-mlflow.yaml): the serving Role may create, patch and
delete Deployments, Services and Ingresses there, which must not reach MLflow or Airflow.
*/}}
{{- define "airflow-mlops.serving.namespace" -}}
{{- default (printf "%s-serving" .Release.Namespace) .Values.serving.namespace }}
{{- end }}

{{/* Usage: include "airflow-mlops.serving.modelName" (list . $model) */}}
{{- define "airflow-mlops.serving.modelName" -}}
{{- include "airflow-mlops.componentName" (list (index . 0) (printf "serving-%s" (index . 1).name)) }}
{{- end }}

{{/*
TLS Secret of the model hosts (serving.tls.secretName, default `<fullname>-serving-tls`), in
serving.namespace: the chart's Ingress and the ml_serving DAG's (platform.json
serving.tlsSecretName) use the same one, for example a wildcard certificate.
*/}}
{{- define "airflow-mlops.serving.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "airflow-mlops.componentName" (list . "serving"))) .Values.serving.tls.secretName }}
{{- end }}

{{/* Host of a model behind the ingress: `<model>.<serving.domain>`. */}}
{{- define "airflow-mlops.serving.host" -}}
{{- printf "%s.%s" (index . 1).name (trimAll "." (index . 0).Values.serving.domain) }}
{{- end }}

{{/*
Usage: include "airflow-mlops.serving.selectorLabels" (list $root $model [managedBy]);
managedBy defaults to Helm (the release's service). Only chart-managed servers carry
`app.kubernetes.io/instance` (a Helm label: Argo CD's label tracking reads it); the ml_serving
DAG's run-time objects are told apart by `mlops.airflow.apache.org/release` (serving.labels),
which the NetworkPolicies select.
*/}}
{{- define "airflow-mlops.serving.selectorLabels" -}}
{{- $root := index . 0 -}}
{{- $managedBy := $root.Release.Service -}}
{{- if gt (len .) 2 }}{{ $managedBy = index . 2 }}{{ end -}}
app.kubernetes.io/name: mlflow-model-server
{{- if eq $managedBy $root.Release.Service }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- end }}
mlops.airflow.apache.org/model: {{ (index . 1).name }}
app.kubernetes.io/managed-by: {{ $managedBy }}
{{- end }}

{{- define "airflow-mlops.serving.labels" -}}
{{- $root := index . 0 -}}
{{- if or (le (len .) 2) (eq (index . 2) $root.Release.Service) -}}
helm.sh/chart: {{ include "airflow-mlops.chart" $root }}
{{ end -}}
{{ include "airflow-mlops.serving.selectorLabels" . }}
app.kubernetes.io/component: model-serving
app.kubernetes.io/part-of: airflow-mlops
mlops.airflow.apache.org/release: {{ $root.Release.Name }}
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of serving objects that are not per model (Role, RoleBinding, Ingress). */}}
{{- define "airflow-mlops.serving.commonLabels" -}}
{{ include "airflow-mlops.componentLabels" (list . "model-serving") }}
{{- end }}

{{/*
The model-server Deployment of one model: `mlflow models serve` of the model URI (for example
models:/iris@champion, resolved when the pod starts: restart the Deployment to follow an
alias), probes on /ping, placement and GPU limit from the model's profile (the same
airflow-mlops.placement as the task pod templates), security context, resources and /tmp size
from `serving.*`. Usage: include "airflow-mlops.serving.deployment" (list $root $model [managedBy])
with $model = {name, modelUri, replicas, resources, profile, workers}.
*/}}
{{- define "airflow-mlops.serving.deployment" -}}
{{- $root := index . 0 }}
{{- $model := index . 1 }}
{{- $s := $root.Values.serving }}
{{- $p := index $root.Values.profiles (default $root.Values.defaultProfile $model.profile) | default dict }}
{{- $placement := include "airflow-mlops.placement" (list $root $p (default $s.resources $model.resources)) | fromJson }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "airflow-mlops.serving.modelName" (list $root $model) }}
  namespace: {{ include "airflow-mlops.serving.namespace" $root }}
  labels:
    {{- include "airflow-mlops.serving.labels" . | nindent 4 }}
  annotations:
    mlops.airflow.apache.org/model-uri: {{ $model.modelUri | quote }}
spec:
  replicas: {{ default 1 $model.replicas }}
  revisionHistoryLimit: 5
  # A new version becomes available before the old one goes (rollback keeps serving).
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      {{- include "airflow-mlops.serving.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "airflow-mlops.serving.labels" . | nindent 8 }}
      annotations:
        mlops.airflow.apache.org/model-uri: {{ $model.modelUri | quote }}
    spec:
      automountServiceAccountToken: false
      securityContext:
        {{- toYaml $s.podSecurityContext | nindent 8 }}
      {{- if $root.Values.registry.enabled }}
      imagePullSecrets:
        - name: {{ include "airflow-mlops.registry.secretName" $root }}
      {{- end }}
      {{- with include "airflow-mlops.placementSpec" $placement | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: model-server
          image: {{ include "airflow-mlops.images.mlflow" $root }}
          imagePullPolicy: {{ $root.Values.mlflow.image.pullPolicy }}
          command:
            - mlflow
            - models
            - serve
            - -m
            - {{ $model.modelUri | quote }}
            - --env-manager
            - local
            - -h
            - "0.0.0.0"
            - -p
            - "8080"
            - --workers
            - {{ default $s.workers $model.workers | quote }}
          env:
            - name: HOME
              value: /tmp
            - name: MLFLOW_TRACKING_URI
              value: {{ include "airflow-mlops.mlflow.trackingUri" $root | quote }}
            {{- with include "airflow-mlops.mlflow.clientEnv" $root }}
            {{- . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          # The model is downloaded from the tracking server at start-up.
          startupProbe:
            httpGet:
              path: /ping
              port: http
            periodSeconds: 5
            failureThreshold: 60
          readinessProbe:
            httpGet:
              path: /ping
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
          livenessProbe:
            httpGet:
              path: /ping
              port: http
            periodSeconds: 20
            timeoutSeconds: 5
            failureThreshold: 6
          {{- with $placement.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml $s.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $s.tmpSizeLimit }}
{{- end }}

{{/*
The model-server Deployment the ml_serving DAG starts from (platform ConfigMap key
`serving-deployment.yaml`): model `model`, URI `models:/model/1`, managed-by `airflow`,
placement of `serving.profile` (default: defaultProfile).
*/}}
{{- define "airflow-mlops.serving.dagDeployment" -}}
{{- $model := dict "name" "model" "modelUri" "models:/model/1" "replicas" 1 "profile" .Values.serving.profile }}
{{- include "airflow-mlops.serving.deployment" (list . $model "airflow") }}
{{- end }}

{{/*
Annotations of every model Ingress (the chart's and the ml_serving DAG's, through
platform.json serving.ingressAnnotations): serving.ingress.annotations plus, when
serving.auth.enabled, serving.auth.annotations with `{secret}` replaced by
serving.auth.existingSecret. A JSON object.
*/}}
{{- define "airflow-mlops.serving.ingressAnnotations" -}}
{{- $s := .Values.serving }}
{{- $out := deepCopy ($s.ingress.annotations | default dict) }}
{{- if $s.auth.enabled }}
{{- range $k, $v := $s.auth.annotations }}
{{- $_ := set $out $k (replace "{secret}" $s.auth.existingSecret (toString $v)) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}
