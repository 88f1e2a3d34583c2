{{/*
GPU-packing scheduler: a second kube-scheduler (gpuScheduler.enabled) whose one profile scores
nodes with NodeResourcesFit MostAllocated, weighted on the GPU resource (gpu.resourceName), so
1/2/4-GPU pods fill the GPU node with the fewest GPUs left that still fits them and whole nodes
stay free for 8-GPU pods. Pods use it by `schedulerName` (airflow-mlops.gpuScheduler.podSchedulerName).
*/}}

{{/* Name of the Deployment, ServiceAccount, ConfigMap and bindings. */}}
{{- define "airflow-mlops.gpuScheduler.name" -}}
{{- include "airflow-mlops.componentName" (list . "gpu-scheduler") }}
{{- end }}

{{/* The schedulerName pods ask for: gpuScheduler.schedulerName, default `<release>-gpu-packing`. */}}
{{- define "airflow-mlops.gpuScheduler.schedulerName" -}}
{{- default (printf "%s-gpu-packing" .Release.Name) .Values.gpuScheduler.schedulerName | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The schedulerName a pod placed with a profile gets: the GPU-packing scheduler's when it is on
and the profile asks for GPUs (or gpuScheduler.cpuProfiles), else empty (the cluster's default
scheduler). Usage: include "airflow-mlops.gpuScheduler.podSchedulerName" (list $root $gpus)
*/}}
{{- define "airflow-mlops.gpuScheduler.podSchedulerName" -}}
{{- $root := index . 0 }}
{{- $s := $root.Values.gpuScheduler }}
{{- if and $s.enabled (or (gt (int (index . 1)) 0) $s.cpuProfiles) }}
{{- include "airflow-mlops.gpuScheduler.schedulerName" $root }}
{{- end }}
{{- end }}

{{/*
Image tag: gpuScheduler.image.tag, default the API server's version without a vendor suffix
(v1.35.2-eks-1a2b3c -> v1.35.2; a version without a patch, v1.35 -> v1.35.0), so the scheduler
runs the cluster's minor version (registry.k8s.io tags only whole versions).
*/}}
{{- define "airflow-mlops.gpuScheduler.imageTag" -}}
{{- $tag := toString .Values.gpuScheduler.image.tag }}
{{- if $tag }}
{{- $tag }}
{{- else }}
{{- $k := .Capabilities.KubeVersion }}
{{- $full := regexFind "^v[0-9]+\\.[0-9]+\\.[0-9]+" $k.Version }}
{{- /* a version without a patch (helm template --kube-version 1.35): the minor's first release */ -}}
{{- default (printf "v%s.%s.0" (regexFind "[0-9]+" $k.Major) (regexFind "[0-9]+" $k.Minor)) $full }}
{{- end }}
{{- end }}

{{/* Where the configuration file is mounted in the container. */}}
{{- define "airflow-mlops.gpuScheduler.configPath" -}}/etc/kubernetes/gpu-scheduler/config.yaml{{- end }}

{{/*
The KubeSchedulerConfiguration: leader election with a Lease named after the scheduler in the
release namespace (the Role of gpu-scheduler-role.yaml allows exactly that Lease); one profile;
the client connects in-cluster with the pod's ServiceAccount token. NodeResourcesFit scores with
MostAllocated, the GPU resource weighted 10 against CPU and memory 1 each, and its score weight
is raised to 5 so NodeResourcesBalancedAllocation does not outweigh the packing. Pods requesting
no GPU are scored by CPU and memory only. Filtering (what fits where) is the default's.
*/}}
{{- define "airflow-mlops.gpuScheduler.config" -}}
{{- $name := include "airflow-mlops.gpuScheduler.schedulerName" . -}}
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: true
  resourceLock: leases
  resourceName: {{ $name }}
  resourceNamespace: {{ .Release.Namespace }}
profiles:
  - schedulerName: {{ $name }}
    plugins:
      score:
        enabled:
          - name: NodeResourcesFit
            weight: 5
    pluginConfig:
      - name: NodeResourcesFit
        args:
          scoringStrategy:
            type: MostAllocated
            resources:
              - name: {{ .Values.gpu.resourceName }}
                weight: 10
              - name: cpu
                weight: 1
              - name: memory
                weight: 1
{{- end }}
