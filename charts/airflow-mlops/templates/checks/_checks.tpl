{{/*
Helpers of the render-time checks (templates/checks/*): what values.schema.json cannot express.
*/}}

{{/*
A Kubernetes quantity as a plain number (a string to read back with float64): "500m" -> 0.5,
"1Gi" -> 1073741824, "2" -> 2. The schema has already refused anything that is not a
non-negative quantity. Usage: float64 (include "airflow-mlops.quantity" "1Gi")
*/}}
{{- define "airflow-mlops.quantity" -}}
{{- $q := toString . | trimPrefix "+" -}}
{{- $num := regexFind "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?" $q -}}
{{- $suffix := trimPrefix $num $q -}}
{{- $mult := dict "" "1" "m" "0.001" "k" "1000" "M" "1000000" "G" "1000000000" "T" "1000000000000" "P" "1000000000000000" "E" "1000000000000000000" "Ki" "1024" "Mi" "1048576" "Gi" "1073741824" "Ti" "1099511627776" "Pi" "1125899906842624" "Ei" "1152921504606846976" -}}
{{- if not (hasKey $mult $suffix) -}}
{{- fail (printf "%q is not a Kubernetes quantity (for example 500m, 2, 512Mi, 4Gi)." $q) -}}
{{- end -}}
{{- mulf (float64 (default "0" $num)) (float64 (get $mult $suffix)) -}}
{{- end }}

{{/*
Refuses a ResourceRequirements whose request is above its limit, or whose extended resource
(GPUs) has a request different from its limit (the API server refuses both, in a pod template
only when a task runs). Usage: include "airflow-mlops.checkResources" (list "mlflow.resources" $resources)
*/}}
{{- define "airflow-mlops.checkResources" -}}
{{- $path := index . 0 }}
{{- $r := index . 1 | default dict }}
{{- $requests := $r.requests | default dict }}
{{- $limits := $r.limits | default dict }}
{{- range $name, $limit := $limits }}
{{- if hasKey $requests $name }}
{{- $request := get $requests $name }}
{{- $req := float64 (include "airflow-mlops.quantity" $request) }}
{{- $lim := float64 (include "airflow-mlops.quantity" $limit) }}
{{- if gt $req $lim }}
{{- include "airflow-mlops.checks.refuse" (printf "%s.requests.%s=%v is above %s.limits.%s=%v: a request must be <= its limit (the API server refuses the pod)." $path $name $request $path $name $limit) }}
{{- end }}
{{- $extended := and (contains "/" $name) (not (hasPrefix "kubernetes.io/" $name)) }}
{{- if and $extended (ne $req $lim) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s.requests.%s=%v differs from %s.limits.%s=%v: an extended resource cannot be overcommitted, its request must equal its limit (or set only the limit)." $path $name $request $path $name $limit) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
One refusal of a check: the message followed by the record separator check-values.yaml splits
on. Every check prints its refusals with it instead of calling fail, so that one render reports
every problem of the values at once. Usage: include "airflow-mlops.checks.refuse" "<message>"
*/}}
{{- define "airflow-mlops.checks.refuse" -}}
{{ . }}{{ "\x1e" }}
{{- end }}

{{/*
Refusals for a pinned known_hosts text of an SSH repository: every line must be a known_hosts
line (`[marker] host-patterns key-type base64-key [comment]`, the key's own type inside the
base64 blob) and one of them must name the repository's host (`[host]:port` for a port other
than 22). Hashed host names (`|1|...`, ssh-keygen -H) cannot be compared and are taken as they are.
Usage: include "airflow-mlops.checks.knownHosts" (list "<repo URL>" "<known_hosts text>")
*/}}
{{- define "airflow-mlops.checks.knownHosts" -}}
{{- $repo := index . 0 }}
{{- $text := index . 1 }}
{{- $host := "" }}
{{- $port := "" }}
{{- if hasPrefix "ssh://" $repo }}
{{- $authority := first (splitList "/" (trimPrefix "ssh://" $repo)) }}
{{- $authority = last (splitList "@" $authority) }}
{{- $host = regexReplaceAll "^\\[?([^\\]]*?)\\]?(:[0-9]+)?$" $authority "${1}" }}
{{- $port = trimPrefix ":" (regexFind ":[0-9]+$" $authority) }}
{{- else }}
{{- $host = regexReplaceAll "^[^@]+@([^:/]+):.*$" $repo "${1}" }}
{{- end }}
{{- $want := ternary $host (printf "[%s]:%s" $host $port) (or (eq $port "") (eq $port "22")) }}
{{- $types := list "ssh-ed25519" "ssh-rsa" "ssh-dss" "ecdsa-sha2-nistp256" "ecdsa-sha2-nistp384" "ecdsa-sha2-nistp521" "sk-ssh-ed25519@openssh.com" "sk-ecdsa-sha2-nistp256@openssh.com" }}
{{- $matched := false }}
{{- $hashed := false }}
{{- $lines := 0 }}
{{- $bad := 0 }}
{{- range $i, $raw := splitList "\n" $text }}
{{- $line := trim $raw }}
{{- if and $line (not (hasPrefix "#" $line)) }}
{{- $lines = add1 $lines }}
{{- $f := regexSplit "\\s+" $line -1 }}
{{- if hasPrefix "@" (first $f) }}{{ $f = rest $f }}{{ end }}
{{- $ok := ge (len $f) 3 }}
{{- if $ok }}
{{- $type := index $f 1 }}
{{- $blob := index $f 2 }}
{{- $ok = and (has $type $types) (regexMatch "^[A-Za-z0-9+/]+={0,2}$" $blob) (contains $type (b64dec $blob)) }}
{{- end }}
{{- if not $ok }}
{{- $bad = add1 $bad }}
{{- include "airflow-mlops.checks.refuse" (printf "airflow.dags.gitSync.knownHosts line %d %q is not a known_hosts line. Allowed: `<host>[,<host>...] <key type> <base64 public key>` with a key type of %s, as scripts/gitsync-bootstrap or `ssh-keyscan %s` prints it." (add1 $i) (trunc 80 $line) (join ", " $types) $host) }}
{{- else }}
{{- range $pattern := splitList "," (first $f) }}
{{- if hasPrefix "|1|" $pattern }}{{ $hashed = true }}{{ end }}
{{- $re := printf "^%s$" (regexQuoteMeta $pattern | replace "\\*" ".*" | replace "\\?" ".") }}
{{- if and (not (hasPrefix "!" $pattern)) (regexMatch $re $want) }}{{ $matched = true }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $lines 0 }}
{{- include "airflow-mlops.checks.refuse" (printf "airflow.dags.gitSync.knownHosts has no known_hosts line (only comments or blank lines). Allowed: the known_hosts lines of %s, from scripts/gitsync-bootstrap --host %s." $want $host) }}
{{- else if and $host (eq $bad 0) (not $matched) (not $hashed) }}
{{- include "airflow-mlops.checks.refuse" (printf "airflow.dags.gitSync.knownHosts pins no key for %s, the host of airflow.dags.gitSync.repo %q, so git-sync would refuse to connect (or the keys are for another host). Allowed: the known_hosts lines of that host, from scripts/gitsync-bootstrap --host %s (compare the fingerprint it prints with the one your git host publishes)." $want $repo $host) }}
{{- end }}
{{- end }}
