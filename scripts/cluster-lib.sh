# shellcheck shell=bash disable=SC2034
# Shared by scripts/cluster-up and scripts/cluster-down (sourced): the layout of the state
# directory, the ports, and how the processes of the local control plane are found and stopped.
#
# Environment (all optional):
#   CLUSTER_DIR         state directory (default: <repo>/.cluster/local; the tests use .cluster/tests-<pid>)
#   CLUSTER_BIN         directory of the binaries (default: <repo>/bin, built by `make cluster-tools`)
#   CLUSTER_PORT_BASE   first of five consecutive ports on 127.0.0.1 (default 26440):
#                       +0 kube-apiserver, +1 etcd clients, +2 etcd peers, +3 controller-manager,
#                       +4 scheduler (kwok listens on no port); +5 is the tier registry's
#                       (scripts/cluster/registry.py, started by whoever needs it): the real
#                       node's containerd reaches it there
#   CLUSTER_STOP_TIMEOUT seconds between SIGTERM and SIGKILL (default 10)

CLUSTER_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$CLUSTER_REPO/.cluster/local}
# An absolute path without a trailing slash: it identifies our processes (every one of them
# has it on its command line).
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd -P)
CLUSTER_BIN=${CLUSTER_BIN:-$CLUSTER_REPO/bin}
CLUSTER_PORT_BASE=${CLUSTER_PORT_BASE:-26440}
CLUSTER_STOP_TIMEOUT=${CLUSTER_STOP_TIMEOUT:-10}

if ! [[ "$CLUSTER_PORT_BASE" =~ ^[0-9]+$ ]] || ((CLUSTER_PORT_BASE < 1024 || CLUSTER_PORT_BASE > 65530)); then
  echo "cluster: CLUSTER_PORT_BASE=$CLUSTER_PORT_BASE is not a port between 1024 and 65530." >&2
  exit 1
fi
API_PORT=$CLUSTER_PORT_BASE
ETCD_PORT=$((CLUSTER_PORT_BASE + 1))
ETCD_PEER_PORT=$((CLUSTER_PORT_BASE + 2))
KCM_PORT=$((CLUSTER_PORT_BASE + 3))
SCHED_PORT=$((CLUSTER_PORT_BASE + 4))
CLUSTER_PORTS=("$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KCM_PORT" "$SCHED_PORT")

# Start order; stopped in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

RUN_DIR=$CLUSTER_DIR/run
LOG_DIR=$CLUSTER_DIR/logs
PKI_DIR=$CLUSTER_DIR/pki

# realnode up|down|check: the real node of this state directory (scripts/cluster/realnode.py).
realnode() {
  (cd "$CLUSTER_REPO" && CLUSTER_DIR=$CLUSTER_DIR CLUSTER_PORT_BASE=$CLUSTER_PORT_BASE CLUSTER_BIN=$CLUSTER_BIN \
    PYTHONPATH=$CLUSTER_REPO python3 -m scripts.cluster.realnode "$@")
}

# lock_state: one cluster-up/cluster-down at a time per state directory (fd 8; the started
# servers do not inherit it).
lock_state() {
  exec 8>"$CLUSTER_DIR/.lock"
  if ! flock -n 8; then
    echo "cluster: another cluster-up/cluster-down runs on $CLUSTER_DIR; waiting for it"
    flock -w 600 8 || {
      echo "cluster: $CLUSTER_DIR/.lock still held after 10 min: is a cluster-up hanging?" >&2
      exit 1
    }
  fi
}

# is_ours PID [NAME]: the process is alive, runs one of our binaries (NAME when given) and has
# this state directory on its command line. Guards every kill against reused pids and against
# processes of other state directories.
is_ours() {
  local pid=$1 name=${2:-} args=() cmdline exe
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # builtins only: this runs for every process of the machine when looking for leftovers
  mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  ((${#args[@]})) || return 1
  cmdline="${args[*]}"
  exe=${args[0]##*/}
  if [[ -n "$name" ]]; then
    [[ "$exe" == "$name" ]] || return 1
  else
    case "$exe" in etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kwok) ;; *) return 1 ;; esac
  fi
  [[ "$cmdline" == *"$CLUSTER_DIR/"* ]]
}

# our_pids: every live process of this state directory: the recorded pids and any leftover
# (a process started by an earlier run whose pid file is gone still has the directory on its
# command line).
our_pids() {
  local f pid p
  {
    for f in "$RUN_DIR"/*.pid; do
      [[ -f "$f" ]] || continue
      pid=$(<"$f")
      if is_ours "$pid"; then echo "$pid"; fi
    done
    for p in /proc/[0-9]*; do
      pid=${p#/proc/}
      if is_ours "$pid"; then echo "$pid"; fi
    done
  } | sort -un
}

# gone PID: the process has exited (or is a zombie waiting for its parent).
gone() {
  [[ ! -d /proc/$1 ]] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# all_gone SECONDS PID...: wait up to SECONDS until every PID is gone (status 1 if one is left).
all_gone() {
  local pid alive deadline=$((SECONDS + $1))
  shift
  while ((SECONDS < deadline)); do
    alive=0
    for pid in "$@"; do gone "$pid" || alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  return 1
}

# stop_group PID...: SIGTERM, SIGKILL after CLUSTER_STOP_TIMEOUT seconds, wait until gone.
stop_group() {
  local pid
  (($#)) || return 0
  for pid in "$@"; do
    echo "cluster: stopping $(process_name "$pid") (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
  done
  all_gone "$CLUSTER_STOP_TIMEOUT" "$@" && return 0
  for pid in "$@"; do
    if ! gone "$pid"; then
      echo "cluster: $(process_name "$pid") (pid $pid) did not stop within ${CLUSTER_STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  all_gone 5 "$@" || true
}

process_name() {
  local args=()
  mapfile -d '' -t args 2>/dev/null <"/proc/$1/cmdline" || true
  ((${#args[@]})) || return 0
  echo "${args[0]##*/}"
}

# stop_all: every process of this state directory, in the reverse order of the start: the
# API clients (kwok, scheduler, controller-manager), then kube-apiserver, then etcd (an
# apiserver whose etcd is gone first hangs in its shutdown). Removes the pid files.
stop_all() {
  local pids=() pid clients=() apiservers=() etcds=()
  mapfile -t pids < <(our_pids)
  for pid in "${pids[@]}"; do
    case "$(process_name "$pid")" in
      etcd) etcds+=("$pid") ;;
      kube-apiserver) apiservers+=("$pid") ;;
      *) clients+=("$pid") ;;
    esac
  done
  stop_group "${clients[@]}"
  stop_group "${apiservers[@]}"
  stop_group "${etcds[@]}"
  rm -f "$RUN_DIR"/*.pid
}

# ports_released: wait up to 5 s until no process listens on our ports any more.
ports_released() {
  local deadline=$((SECONDS + 5)) port busy
  while :; do
    busy=0
    for port in "${CLUSTER_PORTS[@]}"; do
      [[ -z "$(port_holder "$port")" ]] || busy=1
    done
    ((busy)) || return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# port_holder PORT: "pid name" of the process listening on 127.0.0.1:PORT (or on every
# address), "? ?" when the port is taken but its owner is not visible, nothing when free.
port_holder() {
  local port=$1 line pid name
  if ! command -v ss >/dev/null 2>&1; then
    # without ss (iproute2): a connect tells whether something answers
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "? ?"
    fi
    return 0
  fi
  line=$(ss -Hltnp "( sport = :$port )" 2>/dev/null | head -n1) || true
  [[ -n "$line" ]] || return 0
  pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$line")
  name=$(sed -n 's/.*users:(("\([^"]*\)".*/\1/p' <<<"$line")
  echo "${pid:-?} ${name:-?}"
}
