# shellcheck shell=bash disable=SC2034
# Steps of scripts/kind-up that make the cluster: the kind cluster, its nodes (platform on the
# control plane, GPU worker with nvidia.com/gpu) and the ingress controller. Sourced after lib.sh.

KIND_CLUSTER_TEMPLATE=$KIND_REPO/scripts/kind/cluster.yaml
CONTROL_PLANE=$KIND_CLUSTER-control-plane
GPU_NODE=$KIND_CLUSTER-worker

# render_cluster_config: the kind cluster config with the shared host directory filled in.
render_cluster_config() {
  sed "s|@SHARED_DIR@|$KIND_SHARED_DIR|g" "$KIND_CLUSTER_TEMPLATE"
}

# create_cluster: the kind cluster (created once; later runs reuse it and start stopped nodes).
create_cluster() {
  step cluster "kind cluster '$KIND_CLUSTER' (control plane + GPU worker)"
  local node
  if kind get clusters 2>/dev/null | grep -x "$KIND_CLUSTER" >/dev/null; then
    log "cluster exists: reusing it"
    # Node containers stop with Docker (laptop reboot, Docker Desktop restart): start them again.
    for node in $(kind get nodes --name "$KIND_CLUSTER"); do
      if [[ "$(docker inspect -f '{{.State.Running}}' "$node" 2>/dev/null)" != true ]]; then
        log "starting stopped node container $node"
        docker start "$node" >/dev/null || die "cannot start the kind node container $node." "Run 'make kind-down' then 'make kind-up' to recreate the cluster."
      fi
    done
    kind export kubeconfig --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG" >/dev/null
  else
    render_cluster_config >"$WORK/cluster.yaml"
    log "creating (first time: pulls the node image, ~1 GB)"
    kind create cluster --config "$WORK/cluster.yaml" --kubeconfig "$KIND_KUBECONFIG" --wait 180s ||
      die "kind create cluster failed (see its output above)." \
        "Common causes: host ports 18080/18443 in use (lsof -i :18080), too little Docker memory," \
        "or a half-created cluster: run 'make kind-down' and retry."
  fi
  wait_until 180 "both nodes Ready" kc wait --for=condition=Ready nodes --all --timeout=5s
}

gpu_allocatable() { kc get node "$GPU_NODE" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}'; }
gpu_ready() { [[ "$(gpu_allocatable)" == "$GPU_COUNT" ]]; }

# prepare_nodes: the platform on the control plane, the GPU worker labelled, tainted and with
# the extended resource nvidia.com/gpu=$GPU_COUNT.
prepare_nodes() {
  step nodes "GPU worker label/taint + extended resource nvidia.com/gpu=$GPU_COUNT"
  # The platform itself runs on the control plane: remove its NoSchedule taint (kind keeps it on
  # multi-node clusters). The GPU worker only takes pods tolerating nvidia.com/gpu.
  if kc get node "$CONTROL_PLANE" -o jsonpath='{.spec.taints[*].key}' | grep 'node-role.kubernetes.io/control-plane' >/dev/null; then
    kc taint node "$CONTROL_PLANE" node-role.kubernetes.io/control-plane:NoSchedule- >/dev/null
    log "control plane schedulable"
  fi
  # Label and taint are set at join (cluster.yaml); enforce them for clusters made otherwise.
  kc label node "$GPU_NODE" "$GPU_LABEL=true" --overwrite >/dev/null
  kc taint node "$GPU_NODE" "$GPU_TAINT_KEY=present:NoSchedule" --overwrite >/dev/null
  # Extended resource, the documented way: a JSON patch on the node's status capacity
  # (https://kubernetes.io/docs/tasks/administer-cluster/extended-resource-node/); "~1" escapes "/".
  if [[ "$(gpu_allocatable)" != "$GPU_COUNT" ]]; then
    kc patch node "$GPU_NODE" --subresource=status --type=json \
      -p "[{\"op\": \"add\", \"path\": \"/status/capacity/nvidia.com~1gpu\", \"value\": \"$GPU_COUNT\"}]" >/dev/null
  fi
  wait_until 60 "node $GPU_NODE allocatable nvidia.com/gpu=$GPU_COUNT" gpu_ready
}

# Its validating webhook must answer before the chart creates Ingresses (else helm fails with
# "failed calling webhook validate.nginx.ingress.kubernetes.io").
admission_endpoints() {
  [[ -n "$(kc get endpointslices -n ingress-nginx -l kubernetes.io/service-name=ingress-nginx-controller-admission \
    -o jsonpath='{.items[*].endpoints[*].addresses[*]}')" ]]
}

# install_ingress: ingress-nginx from the kind provider manifest of a pinned release (once).
install_ingress() {
  step ingress "ingress-nginx $INGRESS_NGINX_VERSION (kind provider manifest)"
  if kc get deployment -n ingress-nginx ingress-nginx-controller >/dev/null 2>&1; then
    log "ingress-nginx installed: reusing it"
  else
    kc apply -f "$INGRESS_NGINX_MANIFEST" >/dev/null ||
      die "could not apply $INGRESS_NGINX_MANIFEST" "kind-test needs internet access for the ingress controller manifest and images."
  fi
  wait_until 300 "ingress-nginx controller available" \
    kc wait -n ingress-nginx --for=condition=Available deployment/ingress-nginx-controller --timeout=5s
  wait_until 120 "ingress-nginx admission webhook endpoints" admission_endpoints
}
