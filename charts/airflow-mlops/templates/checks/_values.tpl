{{- /*
Refuses unsafe or inconsistent values with a message naming the key and what is allowed.
Prints one message per refusal (check-values.yaml collects them). Types and unknown keys are refused earlier by files/values.schema.json (checks/_schema.tpl); the
checks below repeat the type checks that matter.
*/ -}}
{{- define "airflow-mlops.checks.values" }}
{{- $V := .Values }}
{{- $af := $V.airflow | default dict }}
{{- $namePattern := "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" }}

{{- /* git-sync over SSH needs pinned host keys: the official chart turns host-key checking off without them. */ -}}
{{- $gs := dig "dags" "gitSync" dict $af }}
{{- if and $af.enabled (dig "enabled" false $gs) }}
{{- $repo := toString (dig "repo" "" $gs) }}
{{- if or (hasPrefix "ssh://" $repo) (regexMatch "^[A-Za-z0-9._-]+@[^:/]+:" $repo) }}
{{- if not (dig "knownHosts" "" $gs) }}
{{- include "airflow-mlops.checks.refuse" (printf "airflow.dags.gitSync.knownHosts is required for the SSH repository %q: without it the official chart disables host-key checking. Run scripts/gitsync-bootstrap to pin the host key (ssh-keyscan + fingerprint) and pass it with --set-file airflow.dags.gitSync.knownHosts=<known_hosts file>." $repo) }}
{{- else }}
{{- include "airflow-mlops.checks.knownHosts" (list $repo (toString (dig "knownHosts" "" $gs))) }}
{{- end }}
{{- if not (or (dig "sshKeySecret" "" $gs) (dig "sshKey" "" $gs)) }}
{{- include "airflow-mlops.checks.refuse" (printf "airflow.dags.gitSync.sshKeySecret (a Secret with key gitSshKey, made by scripts/gitsync-bootstrap) or airflow.dags.gitSync.sshKey is required for the SSH repository %q." $repo) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Names the official chart would give its objects must be valid Kubernetes names. */ -}}
{{- include "airflow-mlops.airflowChart.checkNames" . }}

{{- /* No pods/exec unless tasks.rbac.podsExec: the official pod-launcher Role always grants it. */ -}}
{{- if and $af.enabled (dig "allowPodLaunching" false $af) (dig "rbac" "create" true $af) (not $V.tasks.rbac.podsExec) }}
{{- include "airflow-mlops.checks.refuse" "airflow.allowPodLaunching=true renders the official chart's pod-launcher Role, which always grants pods/exec, while tasks.rbac.podsExec=false: leave airflow.allowPodLaunching=false (tasks.rbac renders the Role the KubernetesPodOperator needs, in the task namespace) or set tasks.rbac.podsExec=true." }}
{{- end }}

{{- /* Registry (Nexus) */ -}}
{{- if $V.registry.enabled }}
{{- if not $V.registry.server }}
{{- include "airflow-mlops.checks.refuse" "registry.server is required when registry.enabled=true (the registry host, for example nexus.example.com:8443)." }}
{{- end }}
{{- if and (not $V.registry.existingSecret) (or (not $V.registry.username) (not $V.registry.password)) }}
{{- include "airflow-mlops.checks.refuse" "registry.enabled=true needs credentials: set registry.existingSecret (an existing kubernetes.io/dockerconfigjson Secret) or both registry.username and registry.password." }}
{{- end }}
{{- $secret := include "airflow-mlops.registry.secretName" . }}
{{- if $af.enabled }}
{{- $listed := list }}
{{- range ($af.imagePullSecrets | default list) }}
{{- $listed = append $listed (ternary (get (ternary . dict (kindIs "map" .)) "name") (toString .) (kindIs "map" .)) }}
{{- end }}
{{- if not (has $secret $listed) }}
{{- include "airflow-mlops.checks.refuse" (printf "airflow.imagePullSecrets must list the registry pull secret %q so that Airflow's own pods pull from %s too (listed now: %v). Add `airflow.imagePullSecrets: [%s]` (chart 1.20.0 has no registry.secretNames)." $secret $V.registry.server $listed $secret) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* NFS data sets */ -}}
{{- if $V.storage.nfs.enabled }}
{{- if or (not $V.storage.nfs.server) (not $V.storage.nfs.path) }}
{{- include "airflow-mlops.checks.refuse" (printf "storage.nfs.enabled=true needs storage.nfs.server (host name or IP, now %q) and storage.nfs.path (an absolute exported path, now %q)." $V.storage.nfs.server $V.storage.nfs.path) }}
{{- end }}
{{- if not (hasPrefix "/" $V.storage.nfs.path) }}
{{- include "airflow-mlops.checks.refuse" (printf "storage.nfs.path must be an absolute path on the NFS server (starting with /), got %q." $V.storage.nfs.path) }}
{{- end }}
{{- end }}

{{- /* Profiles */ -}}
{{- if not $V.profiles }}
{{- include "airflow-mlops.checks.refuse" "profiles must define at least one profile (for example cpu: {gpus: 0})." }}
{{- end }}
{{- range $name, $p := $V.profiles }}
{{- if or (not (regexMatch $namePattern $name)) (gt (len $name) 50) }}
{{- include "airflow-mlops.checks.refuse" (printf "profiles.%s: a profile name must be a lowercase DNS label of at most 50 characters (a-z, 0-9 and '-', starting and ending with a letter or digit): it becomes a file name and a label value." $name) }}
{{- end }}
{{- if not (kindIs "map" $p) }}
{{- include "airflow-mlops.checks.refuse" (printf "profiles.%s must be a map with at least `gpus` (a whole number >= 0)." $name) }}
{{- end }}
{{- $g := $p.gpus }}
{{- $whole := or (kindIs "int" $g) (kindIs "int64" $g) (and (kindIs "float64" $g) (eq (toString (floor $g)) (toString $g))) }}
{{- if or (not $whole) (lt (float64 (default 0 $g)) 0.0) }}
{{- include "airflow-mlops.checks.refuse" (printf "profiles.%s.gpus must be a whole number >= 0 (GPUs per task pod), got %v." $name $g) }}
{{- else }}
{{- /* A DAG asks for a profile by name: gpu-4 must give 4 GPUs, cpu none. */ -}}
{{- $named := ternary "0" (regexReplaceAll "^gpu-([0-9]+)$" $name "${1}") (eq $name "cpu") }}
{{- if and (regexMatch "^[0-9]+$" $named) (ne (int $named) (int $g)) }}
{{- include "airflow-mlops.checks.refuse" (printf "profiles.%s.gpus=%v disagrees with the profile's name: DAGs choose %s for %s GPU(s). Set profiles.%s.gpus=%s, or give a profile of %v GPU(s) a name that says so (gpu-%v, or another name without a GPU count)." $name $g $name $named $name $named $g $g) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not (hasKey $V.profiles $V.defaultProfile) }}
{{- include "airflow-mlops.checks.refuse" (printf "defaultProfile %q is not a profile; allowed: %s." $V.defaultProfile (keys $V.profiles | sortAlpha | join ", ")) }}
{{- end }}

{{- /* GPU pool */ -}}
{{- if and $V.pools.enabled $af.enabled }}
{{- $maxGpus := int (include "airflow-mlops.profiles.maxGpus" .) }}
{{- $pool := include "airflow-mlops.pools.gpuPool" . | fromJson }}
{{- if and (gt $maxGpus 0) (not $pool) }}
{{- include "airflow-mlops.checks.refuse" (printf "pools.gpuPool %q is not in pools.items: add {name: %s, slots: <GPUs available to Airflow, at least %d>}." $V.pools.gpuPool $V.pools.gpuPool $maxGpus) }}
{{- end }}
{{- if $pool }}
{{- $slots := int $pool.slots }}
{{- if and (ge $slots 0) (lt $slots $maxGpus) }}
{{- include "airflow-mlops.checks.refuse" (printf "pools.items[%s].slots=%d is smaller than the largest GPU profile (%d GPUs): a task of that profile could never run. Allowed: slots >= %d (or -1 for unlimited)." $V.pools.gpuPool $slots $maxGpus $maxGpus) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Wiring of our ConfigMaps into the official chart (airflow.volumes cannot be templated). */ -}}
{{- if $af.enabled }}
{{- $want := dict "/opt/airflow/platform" (include "airflow-mlops.platformConfigMapName" .) "/opt/airflow/pod-templates" (include "airflow-mlops.podTemplatesConfigMapName" .) }}
{{- $volumes := dict }}
{{- range ($af.volumes | default list) }}
{{- if and (kindIs "map" .) .configMap }}{{- $_ := set $volumes .name .configMap.name }}{{- end }}
{{- end }}
{{- range $path, $cm := $want }}
{{- $ok := false }}
{{- range ($af.volumeMounts | default list) }}
{{- if and (eq (toString .mountPath) $path) (eq (get $volumes (toString .name)) $cm) }}{{- $ok = true }}{{- end }}
{{- end }}
{{- if not $ok }}
{{- include "airflow-mlops.checks.refuse" (printf "airflow.volumes/airflow.volumeMounts must mount ConfigMap %q at %s in every Airflow component (names come from mounts.configMapPrefix=%q). Expected:\n  airflow.volumes: [{name: mlops-platform, configMap: {name: %s}}, {name: mlops-pod-templates, configMap: {name: %s}}]\n  airflow.volumeMounts: [{name: mlops-platform, mountPath: /opt/airflow/platform, readOnly: true}, {name: mlops-pod-templates, mountPath: /opt/airflow/pod-templates, readOnly: true}]" $cm $path $V.mounts.configMapPrefix (include "airflow-mlops.platformConfigMapName" $) (include "airflow-mlops.podTemplatesConfigMapName" $)) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Development database */ -}}
{{- if $V.devDatabase.enabled }}
{{- if not $V.devDatabase.auth.existingSecret }}
{{- include "airflow-mlops.checks.refuse" "devDatabase.auth.existingSecret is required when devDatabase.enabled=true: a Secret holding the database password (key devDatabase.auth.passwordKey), created by the kind scripts or by you; the chart never generates passwords." }}
{{- end }}
{{- if $af.enabled }}
{{- if dig "postgresql" "enabled" true $af }}
{{- include "airflow-mlops.checks.refuse" "devDatabase.enabled=true replaces the official chart's PostgreSQL (its Bitnami image tag no longer exists, apache/airflow#57328): set airflow.postgresql.enabled=false." }}
{{- end }}
{{- if not (dig "data" "metadataSecretName" "" $af) }}
{{- include "airflow-mlops.checks.refuse" (printf "devDatabase.enabled=true needs airflow.data.metadataSecretName: a Secret with key `connection` = postgresql://%s:<password>@%s:5432/%s (created with the password Secret, never committed)." $V.devDatabase.auth.username (include "airflow-mlops.devDatabase.host" .) (first $V.devDatabase.databases)) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* NVIDIA Base Command backend (basecommand.json; the key stays in a Secret). */ -}}
{{- $bc := $V.basecommand }}
{{- if $bc.enabled }}
{{- range $key := list "org" "ace" }}
{{- if not (get $bc $key) }}
{{- include "airflow-mlops.checks.refuse" (printf "basecommand.%s is required when basecommand.enabled=true (the NGC %s the jobs run in)." $key (ternary "org" "ACE" (eq $key "org"))) }}
{{- end }}
{{- end }}
{{- if not $bc.connectionSecret.name }}
{{- include "airflow-mlops.checks.refuse" "basecommand.connectionSecret.name is required when basecommand.enabled=true: a Secret in the release namespace whose key basecommand.connectionSecret.key holds the Airflow connection as JSON {\"conn_type\": \"ngc\", \"password\": \"<NGC API key>\"} (made outside the chart; the key never goes into values)." }}
{{- end }}
{{- if not $bc.instanceTypes }}
{{- include "airflow-mlops.checks.refuse" "basecommand.instanceTypes must map at least one profile to a Base Command instance type when basecommand.enabled=true (for example gpu-1: dgxa100.80g.1.norm)." }}
{{- end }}
{{- range $profile, $type := $bc.instanceTypes }}
{{- if not (hasKey $V.profiles $profile) }}
{{- include "airflow-mlops.checks.refuse" (printf "basecommand.instanceTypes.%s: %q is not a profile; allowed: %s." $profile $profile (keys $V.profiles | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- else if eq $bc.defaultBackend "basecommand" }}
{{- include "airflow-mlops.checks.refuse" "basecommand.defaultBackend=basecommand needs basecommand.enabled=true; allowed otherwise: kubernetes." }}
{{- end }}
{{- end }}
