# shellcheck shell=bash disable=SC2034
# Provider `realnode` of scripts/kind-up (MLOPS_KIND_PROVIDER=realnode): the kind-neutral steps
# (Secrets, git server, DAG push, render, volumes, helm upgrade --install) against the
# control-plane tier of `make test` (scripts/cluster-up) instead of a kind cluster. Its real
# node (kubelet + containerd, tainted and labelled mlops.test/real-node=true) runs the platform;
# its kwok GPU nodes stay simulated. The caller (tests/kind/providers.py) has pushed the images
# to the tier's registry and passes:
#   MLOPS_KIND_KUBECONFIG       the tier's kubeconfig
#   MLOPS_KIND_STATE_DIR        state directory (known_hosts; volumes under shared/, on the node's
#                               filesystem: the node is this machine)
#   MLOPS_KIND_EXTRA_VALUES     values files after values/kind.yaml (registry, placement)
#   MLOPS_KIND_GIT_SERVER_IMAGE the git server's image in the registry
#   MLOPS_KIND_PULL_SECRET      a dockerconfigjson Secret in $KIND_NAMESPACE for the git server
# Nothing here creates a cluster, loads images or installs an ingress controller: those steps
# are kind's only. Sourced after lib.sh.

REALNODE_LABEL=mlops.test/real-node
REALNODE_NODE=${MLOPS_REALNODE_NODE:-mlops-real-0}

preflight_realnode() {
  step preflight "tools; provider realnode: the cluster of $KIND_KUBECONFIG, node $REALNODE_NODE"
  require_cmd kubectl "Run 'make tools' (kubectl in ./bin)."
  require_cmd helm "Run 'make tools' (helm in ./bin)."
  require_cmd git "Install git."
  require_cmd ssh-keygen "Install the OpenSSH client (ssh, ssh-keygen)."
  require_cmd ssh "Install the OpenSSH client (ssh, ssh-keygen)."
  require_cmd openssl "Install openssl (generates the random database passwords)."
  [[ -f "$KIND_KUBECONFIG" ]] || die "no kubeconfig at $KIND_KUBECONFIG (MLOPS_KIND_KUBECONFIG)."
  [[ -x "$KIND_VENV_PY" ]] || die "$KIND_VENV_PY is missing (MLOPS_KIND_PYTHON)."
  [[ -n "${MLOPS_KIND_GIT_SERVER_IMAGE:-}" ]] || die "MLOPS_KIND_GIT_SERVER_IMAGE is not set (the git server's image in the registry)."
  mkdir -p "$KIND_STATE_DIR" "$KIND_SHARED_DIR"
  export KUBECONFIG=$KIND_KUBECONFIG
  # the node whose kubelet version the chart is rendered for (render_platform)
  CONTROL_PLANE=$REALNODE_NODE
  kc get node "$REALNODE_NODE" >/dev/null || die "node $REALNODE_NODE is not in the cluster of $KIND_KUBECONFIG."
  realnode_volumes "$GIT_SERVER_MANIFEST" # before the git server's claim exists
}

# realnode_volumes <manifest...>: a PersistentVolume (hostPath under $KIND_SHARED_DIR, mode 0777:
# hostPath volumes get no fsGroup) bound to each claim of the manifests.
realnode_volumes() {
  local dir
  "$KIND_VENV_PY" "$KIND_REPO/scripts/kind/shared_volumes.py" --every-claim --node-dir "$KIND_SHARED_DIR" "$@" \
    >"$WORK/volumes.yaml" 2>"$WORK/volume-dirs.txt" || die "shared_volumes.py failed:" "$(cat "$WORK/volume-dirs.txt")"
  while read -r dir; do
    [[ -n "$dir" ]] || continue
    { mkdir -p "$KIND_SHARED_DIR/$dir" && chmod 0777 "$KIND_SHARED_DIR/$dir"; } || die "cannot create $KIND_SHARED_DIR/$dir."
    log "volume directory $KIND_SHARED_DIR/$dir"
  done <"$WORK/volume-dirs.txt"
  kc apply -f "$WORK/volumes.yaml" >/dev/null
}

# place_git_server: scripts/kind/git-server.yaml (stdin) with the registry's image, the pull
# secret and the real node's selector and toleration.
place_git_server() {
  "$KIND_VENV_PY" "$KIND_REPO/scripts/kind/place.py" --image "git-server=$MLOPS_KIND_GIT_SERVER_IMAGE" \
    ${MLOPS_KIND_PULL_SECRET:+--pull-secret "$MLOPS_KIND_PULL_SECRET"} \
    --node-selector "$REALNODE_LABEL=true" --toleration "$REALNODE_LABEL=true:NoSchedule"
}
