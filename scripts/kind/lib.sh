# shellcheck shell=bash disable=SC2034
# Shared functions of scripts/kind-up, scripts/kind-down and the kind tests' helpers.
# Sourced, never executed. Every message names the step and the seconds elapsed since the
# start of the command, so a slow or stuck step is visible at a glance.

KIND_CLUSTER=${MLOPS_KIND_CLUSTER:-mlops}
# Where the platform goes: kind (a kind cluster made here) or realnode (the control-plane tier's
# real node, scripts/kind/realnode.sh; the cluster and the images are the caller's).
KIND_PROVIDER=${MLOPS_KIND_PROVIDER:-kind}
KIND_NAMESPACE=mlops
# The model servers' namespace (serving.namespace default of values/kind.yaml: <release
# namespace>-serving): the ml_serving DAG's Role may change Deployments there, never in mlops.
KIND_SERVING_NAMESPACE=$KIND_NAMESPACE-serving
KIND_RELEASE=mlops
KIND_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KIND_STATE_DIR=${MLOPS_KIND_STATE_DIR:-$KIND_REPO/.kind}
KIND_KUBECONFIG=${MLOPS_KIND_KUBECONFIG:-$KIND_STATE_DIR/kubeconfig}
# The host directory mounted into both nodes (workspace and dataset volumes; kept by kind-down).
KIND_SHARED_DIR=${MLOPS_KIND_SHARED_DIR:-$KIND_STATE_DIR/shared}
# known_hosts of the in-cluster git server, pinned from its host key Secret (git-sync's).
KIND_KNOWN_HOSTS=$KIND_STATE_DIR/known_hosts
# Python of .venv-kind (footprint.py, shared_volumes.py).
KIND_VENV_PY=${MLOPS_KIND_PYTHON:-$KIND_REPO/.venv-kind/bin/python}
# Docker Desktop's default is 2 CPUs / ~8 GB; the platform needs about 6 GiB for the nodes.
KIND_MIN_MEM_BYTES=${MLOPS_KIND_MIN_MEM_BYTES:-6000000000}
KIND_MIN_CPUS=${MLOPS_KIND_MIN_CPUS:-4}
# ingress-nginx: the kind provider manifest of a pinned controller release (hostPort 80/443 on
# the node labelled ingress-ready=true, tolerates the control-plane taint).
INGRESS_NGINX_VERSION=controller-v1.14.1
INGRESS_NGINX_MANIFEST="https://raw.githubusercontent.com/kubernetes/ingress-nginx/$INGRESS_NGINX_VERSION/deploy/static/provider/kind/deploy.yaml"
GIT_SERVER_HOST=git-server.$KIND_NAMESPACE.svc.cluster.local
GIT_SERVER_REPO_PATH=/srv/git/platform.git
# Path and user kind-up pushes to through its port-forward (the same as above in the cluster;
# tests/scripts/test_kind_up_standin.py points them at a git server running on this machine).
GIT_PUSH_REPO_PATH=${MLOPS_KIND_PUSH_REPO_PATH:-$GIT_SERVER_REPO_PATH}
GIT_PUSH_USER=${MLOPS_KIND_PUSH_USER:-git}
GIT_BRANCH=main
GPU_COUNT=8
GPU_LABEL=nvidia.com/gpu.present
GPU_TAINT_KEY=nvidia.com/gpu

KIND_T0=${KIND_T0:-$SECONDS}
KIND_STEP=${KIND_STEP:-start}

elapsed() { echo $((SECONDS - KIND_T0)); }

log() { printf '[kind %4ss] %-12s %s\n' "$(elapsed)" "$KIND_STEP" "$*"; }

step() {
  KIND_STEP=$1
  shift
  printf '\n[kind %4ss] == %s: %s\n' "$(elapsed)" "$KIND_STEP" "$*"
}

die() {
  printf '\n[kind %4ss] ERROR in step %s: %s\n' "$(elapsed)" "$KIND_STEP" "$1" >&2
  shift
  local line
  for line in "$@"; do
    printf '    %s\n' "$line" >&2
  done
  exit 1
}

kc() { kubectl --kubeconfig "$KIND_KUBECONFIG" "$@"; }

# --- preflight -------------------------------------------------------------------------------

# require_cmd <command> <how to install>
require_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed (or not on PATH)." "$2"
}

# run_with_timeout <seconds> <command...>: like coreutils `timeout` (absent on macOS).
run_with_timeout() {
  local secs=$1 pid watcher rc
  shift
  "$@" &
  pid=$!
  # The watcher must not hold the caller's stdout (a `$(...)` would wait for it) and stops
  # its own sleep when it is told to end.
  (
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$secs" &
    sleeper=$!
    wait "$sleeper"
    kill "$pid" 2>/dev/null
  ) >/dev/null 2>&1 &
  watcher=$!
  rc=0
  wait "$pid" || rc=$?
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  return "$rc"
}

# The Docker engine must answer, with enough memory for two kind nodes + the platform.
check_docker() {
  require_cmd docker "Install Docker (Docker Desktop on macOS/Windows: https://docs.docker.com/desktop/, Docker Engine on Linux: https://docs.docker.com/engine/install/) and start it."
  local out rc=0 wait_s=${MLOPS_KIND_DOCKER_TIMEOUT:-20} out_file
  # Output through a file, not `$(...)`: a child left behind by a hung CLI would keep the pipe open.
  out_file=$(mktemp "${TMPDIR:-/tmp}/kind-docker-info.XXXXXX")
  run_with_timeout "$wait_s" docker info --format '{{.MemTotal}} {{.NCPU}} {{.ServerVersion}}' >"$out_file" 2>&1 || rc=$?
  out=$(cat "$out_file")
  rm -f "$out_file"
  if ((rc != 0)); then
    local said
    said=$(tail -n1 <<<"$out")
    [[ -n "$said" ]] || said="(nothing: no answer within ${wait_s}s)"
    die "the Docker engine does not answer ('docker info' failed)." \
      "docker says: $said" \
      "Start Docker Desktop (or 'sudo systemctl start docker' on Linux) and check that 'docker info' works" \
      "for your user (Linux: add yourself to the 'docker' group, then log in again)."
  fi
  local mem cpus version
  read -r mem cpus version <<<"$out"
  [[ "$mem" =~ ^[0-9]+$ ]] || die "cannot read the Docker engine's memory from 'docker info' (got '$out')."
  log "Docker $version: $cpus CPUs, $((mem / 1024 / 1024)) MiB memory"
  if ((mem < KIND_MIN_MEM_BYTES)); then
    die "Docker has $((mem / 1024 / 1024)) MiB of memory; the kind platform needs at least $((KIND_MIN_MEM_BYTES / 1024 / 1024)) MiB." \
      "Docker Desktop: Settings > Resources > Memory: 8 GB, then Apply & restart." \
      "(override at your own risk: MLOPS_KIND_MIN_MEM_BYTES=<bytes> make kind-up)"
  fi
  if [[ "$cpus" =~ ^[0-9]+$ ]] && ((cpus < KIND_MIN_CPUS)); then
    log "warning: Docker has $cpus CPUs; $KIND_MIN_CPUS are recommended (Docker Desktop: Settings > Resources > CPUs). Continuing: expect slow starts."
  fi
}

check_tools() {
  require_cmd kubectl "Install kubectl 1.34 or 1.35: https://kubernetes.io/docs/tasks/tools/"
  require_cmd kind "Run 'make tools' (builds the pinned kind v0.31.0 into ./bin; needs Go) or install kind v0.31.0: https://kind.sigs.k8s.io/docs/user/quick-start/"
  require_cmd helm "Run 'make tools' (builds the pinned helm into ./bin; needs Go) or install helm 3.20: https://helm.sh/docs/intro/install/"
  require_cmd git "Install git."
  require_cmd ssh-keygen "Install the OpenSSH client (ssh, ssh-keygen)."
  require_cmd ssh "Install the OpenSSH client (ssh, ssh-keygen)."
  require_cmd openssl "Install openssl (generates the random database passwords)."
}

# preflight_quick: what `make kind-up` checks before building anything (seconds).
preflight_quick() {
  step preflight "Docker engine, memory, kubectl"
  check_docker
  require_cmd kubectl "Install kubectl 1.34 or 1.35: https://kubernetes.io/docs/tasks/tools/"
}

# preflight: every tool kind-up runs; from here on KUBECONFIG is the kind cluster's only.
preflight() {
  step preflight "tools and Docker"
  check_docker
  check_tools
  [[ -x "$KIND_VENV_PY" ]] || die "$KIND_VENV_PY is missing." "Run 'make kind-up' (it builds .venv-kind first), not scripts/kind-up alone."
  mkdir -p "$KIND_STATE_DIR" "$KIND_SHARED_DIR"
  # Everything below (kubectl, helm, the bootstrap script) talks to this cluster only, never to
  # the user's current kube context.
  export KUBECONFIG=$KIND_KUBECONFIG
  log "kind $(kind version | awk '{print $2}'), helm $(helm version --template '{{.Version}}'), kubectl $(kubectl version --client -o yaml 2>/dev/null | awk '/gitVersion/ {print $2; exit}')"
}

# --- the work directory of one run --------------------------------------------------------------

# make_work_dir: $WORK, a temporary directory removed on exit, when every process in
# PIDS_TO_STOP (port-forwards, helm) is killed too.
make_work_dir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/kind-up.XXXXXX")
  PIDS_TO_STOP=()
  trap remove_work_dir EXIT
}

remove_work_dir() {
  local pid
  for pid in "${PIDS_TO_STOP[@]+"${PIDS_TO_STOP[@]}"}"; do
    kill "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}

# --- waiting with progress, diagnostics on timeout -------------------------------------------

# run_logged <what> <log file> <command...>: run a long command with its output in a file,
# printing "<what> (Ns)" every 20 s so a slow download or build is visibly alive.
run_logged() {
  local what=$1 file=$2 pid rc=0 start=$SECONDS last=$SECONDS
  shift 2
  log "$what ..."
  "$@" >"$file" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - last >= 20)); then
      log "$what ($((SECONDS - start))s): $(tail -n 1 "$file" | cut -c1-100)"
      last=$SECONDS
    fi
    sleep 1
  done
  wait "$pid" || rc=$?
  return "$rc"
}

# wait_until <timeout-seconds> <what> <command...>: run the command every 5 s until it
# succeeds; print progress every 15 s; on timeout dump diagnostics and fail.
wait_until() {
  local timeout=$1 what=$2
  shift 2
  local start=$SECONDS last=0
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      dump_diagnostics
      die "timed out after ${timeout}s waiting for: $what" "The state of the failing pods is printed above (kubectl describe + logs)."
    fi
    if ((SECONDS - last >= 15)); then
      log "waiting for $what ($((SECONDS - start))s / ${timeout}s)"
      last=$SECONDS
    fi
    sleep 5
  done
  log "ready: $what ($((SECONDS - start))s)"
}

# Platform pods of a namespace that are not Ready (one name per line). Not counted: finished
# pods (Succeeded/Failed: hook Jobs keep the pods of failed attempts) and KubernetesPodOperator
# task pods (label kubernetes_pod_operator), which come and go with DAG runs.
unready_pods() {
  # shellcheck disable=SC2016 # a go-template, not a shell expansion
  kc get pods -n "$1" -o go-template='{{range .items}}{{$ready := false}}{{range .status.conditions}}{{if and (eq .type "Ready") (eq .status "True")}}{{$ready = true}}{{end}}{{end}}{{$finished := or (eq .status.phase "Succeeded") (eq .status.phase "Failed")}}{{$task := false}}{{with .metadata.labels}}{{if index . "kubernetes_pod_operator"}}{{$task = true}}{{end}}{{end}}{{if not (or $ready $finished $task)}}{{.metadata.name}}{{"\n"}}{{end}}{{end}}'
}

# All pods of a namespace Ready (or Completed), and at least one pod exists.
namespace_ready() {
  local ns=$1 count
  count=$(kc get pods -n "$ns" --no-headers 2>/dev/null | wc -l)
  ((count > 0)) || return 1
  [[ -z "$(unready_pods "$ns")" ]]
}

dump_diagnostics() {
  local ns pod
  printf '\n==================== diagnostics (step %s, %ss) ====================\n' "$KIND_STEP" "$(elapsed)" >&2
  kc get nodes -o wide >&2 || true
  for ns in "$KIND_NAMESPACE" ingress-nginx kube-system; do
    kc get namespace "$ns" >/dev/null 2>&1 || continue
    printf '\n---- pods in %s ----\n' "$ns" >&2
    kc get pods -n "$ns" -o wide >&2 || true
    for pod in $(unready_pods "$ns" 2>/dev/null); do
      printf '\n---- kubectl describe pod -n %s %s ----\n' "$ns" "$pod" >&2
      kc describe pod -n "$ns" "$pod" >&2 || true
      printf '\n---- logs of %s (all containers, last 60 lines) ----\n' "$pod" >&2
      kc logs -n "$ns" "$pod" --all-containers --prefix --tail=60 >&2 || true
      kc logs -n "$ns" "$pod" --all-containers --prefix --tail=30 --previous >&2 2>/dev/null || true
    done
    printf '\n---- recent events in %s ----\n' "$ns" >&2
    kc get events -n "$ns" --sort-by=.lastTimestamp 2>/dev/null | tail -n 25 >&2 || true
  done
  printf '====================================================================\n' >&2
}

# --- Secrets (namespace $SECRET_NS, default $KIND_NAMESPACE: `SECRET_NS=<ns> <function>`) -----------

secret_ns() { printf '%s' "${SECRET_NS:-$KIND_NAMESPACE}"; }
secret_exists() { kc get secret -n "$(secret_ns)" "$1" >/dev/null 2>&1; }
secret_value() { kc get secret -n "$(secret_ns)" "$1" -o go-template="{{index .data \"$2\" | base64decode}}"; }
random_password() { openssl rand -hex 24; }

# create_secret_once <name> <key>=<file>...: create a generic Secret from files unless it exists.
create_secret_once() {
  local name=$1
  shift
  if secret_exists "$name"; then
    log "secret $(secret_ns)/$name exists: kept"
    return 0
  fi
  local args=() kv
  for kv in "$@"; do
    args+=("--from-file=$kv")
  done
  kc create secret generic "$name" -n "$(secret_ns)" "${args[@]}" >/dev/null
  kc label secret "$name" -n "$(secret_ns)" app.kubernetes.io/part-of=airflow-mlops-kind >/dev/null
  log "secret $(secret_ns)/$name created"
}

# --- port-forward ------------------------------------------------------------------------------

# port_forward <resource> <remote-port>: start `kubectl port-forward` on a free local port;
# sets PF_PORT and PF_PID (the caller kills PF_PID; kind-up does so in its EXIT trap).
port_forward() {
  local resource=$1 remote=$2 log_file
  log_file=$(mktemp "${TMPDIR:-/tmp}/kind-pf.XXXXXX")
  # kubectl itself, not the kc function: a function would run in a subshell and $! would be
  # that subshell, leaving kubectl behind when the caller kills PF_PID.
  kubectl --kubeconfig "$KIND_KUBECONFIG" port-forward -n "$KIND_NAMESPACE" --address 127.0.0.1 \
    "$resource" ":$remote" >"$log_file" 2>&1 &
  PF_PID=$!
  PF_PORT=
  local i
  for i in $(seq 1 60); do
    PF_PORT=$(sed -nE 's/^Forwarding from 127\.0\.0\.1:([0-9]+) .*/\1/p' "$log_file" | head -n1)
    [[ -n "$PF_PORT" ]] && break
    if ! kill -0 "$PF_PID" 2>/dev/null; then
      die "kubectl port-forward $resource exited:" "$(cat "$log_file")"
    fi
    sleep 0.5
    : "$i"
  done
  [[ -n "$PF_PORT" ]] || die "kubectl port-forward $resource did not report its local port:" "$(cat "$log_file")"
  rm -f "$log_file"
}
