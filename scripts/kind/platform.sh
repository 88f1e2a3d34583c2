# shellcheck shell=bash disable=SC2034
# Steps of scripts/kind-up that install the platform: render the chart with values/kind.yaml
# (and check it fits the kind budget), the shared volumes its claims bind to, `helm upgrade
# --install`, and the summary. Sourced after lib.sh, secrets.sh and cluster.sh.

KIND_CHART=${MLOPS_KIND_CHART:-$KIND_REPO/charts/airflow-mlops}
KIND_VALUES=$KIND_REPO/values/kind.yaml

# render_platform: the official chart in place, HELM_ARGS for this release, $WORK/rendered.yaml,
# and the footprint check on it.
render_platform() {
  step chart "helm dependency build + footprint"
  if ! compgen -G "$KIND_CHART/charts/airflow-*.tgz" >/dev/null; then
    helm repo add apache-airflow https://airflow.apache.org --force-update >/dev/null ||
      die "cannot reach https://airflow.apache.org (the official Airflow chart is downloaded from there)."
    helm dependency build "$KIND_CHART" >/dev/null || die "helm dependency build $KIND_CHART failed."
  fi
  write_generated_values "$WORK/generated-values.yaml"
  HELM_ARGS=(
    "$KIND_RELEASE" "$KIND_CHART" --namespace "$KIND_NAMESPACE" -f "$KIND_VALUES" -f "$WORK/generated-values.yaml"
    --set-file "airflow.dags.gitSync.knownHosts=$KIND_KNOWN_HOSTS"
  )
  # MLOPS_KIND_EXTRA_VALUES: more values files after those (the real-node provider's registry
  # and placement overlays)
  local extra
  for extra in ${MLOPS_KIND_EXTRA_VALUES:-}; do
    HELM_ARGS+=(-f "$extra")
  done
  # Offline rendering assumes Kubernetes v1.20 unless told otherwise (the chart wants >= 1.33).
  local kube_version
  kube_version=$(kc get node "$CONTROL_PLANE" -o jsonpath='{.status.nodeInfo.kubeletVersion}')
  helm template "${HELM_ARGS[@]}" --kube-version "${kube_version:-v1.35.0}" >"$WORK/rendered.yaml" ||
    die "helm template with values/kind.yaml failed (output above)."
  "$KIND_VENV_PY" "$KIND_REPO/scripts/kind/footprint.py" "$WORK/rendered.yaml" "$GIT_SERVER_MANIFEST" ||
    die "the rendered platform does not fit the kind budget (table above)."
}

# create_shared_volumes: a PersistentVolume on the shared host directory for every claim of
# class mlops-shared in the render, and its directory inside the nodes.
create_shared_volumes() {
  step volumes "shared volumes (host directory $KIND_SHARED_DIR, mounted by both nodes)"
  if [[ "$KIND_PROVIDER" == realnode ]]; then
    realnode_volumes "$WORK/rendered.yaml" "$GIT_SERVER_MANIFEST"
    return 0
  fi
  local dir
  "$KIND_VENV_PY" "$KIND_REPO/scripts/kind/shared_volumes.py" "$WORK/rendered.yaml" \
    >"$WORK/shared-volumes.yaml" 2>"$WORK/shared-dirs.txt" || die "shared_volumes.py failed:" "$(cat "$WORK/shared-dirs.txt")"
  while read -r dir; do
    [[ -n "$dir" ]] || continue
    # Created from inside a node (root there) and world-writable: hostPath volumes get no fsGroup,
    # and kubelet gives subPath directories the mode of the volume's root.
    docker exec "$CONTROL_PLANE" sh -c "mkdir -p '/var/local/mlops-shared/$dir' && chmod 0777 '/var/local/mlops-shared/$dir'" ||
      die "cannot create /var/local/mlops-shared/$dir in node $CONTROL_PLANE."
    log "volume directory $dir (kept across helm uninstall and kind-down: $KIND_SHARED_DIR/$dir)"
  done <"$WORK/shared-dirs.txt"
  kc apply -f "$WORK/shared-volumes.yaml" >/dev/null
}

# install_platform: helm upgrade --install (a pending release of an interrupted run rolled back
# first), progress every 15 s, then every pod Ready.
install_platform() {
  step install "helm upgrade --install $KIND_RELEASE (values/kind.yaml)"
  recover_pending_release
  helm upgrade --install "${HELM_ARGS[@]}" --wait --timeout 20m >"$WORK/helm.log" 2>&1 &
  local helm_pid=$! start=$SECONDS last=0 total waiting
  PIDS_TO_STOP+=("$helm_pid")
  while kill -0 "$helm_pid" 2>/dev/null; do
    if ((SECONDS - last >= 15)); then
      total=$(kc get pods -n "$KIND_NAMESPACE" --no-headers 2>/dev/null | wc -l | tr -d ' ')
      waiting=$(unready_pods "$KIND_NAMESPACE" 2>/dev/null | tr '\n' ' ')
      log "helm running ($((SECONDS - start))s); pods: $total, not ready: ${waiting:-none}"
      last=$SECONDS
    fi
    sleep 3
  done
  if ! wait "$helm_pid"; then
    cat "$WORK/helm.log" >&2
    dump_diagnostics
    die "helm upgrade --install failed (helm output and pod diagnostics above)."
  fi
  log "helm upgrade --install --wait done in $((SECONDS - start))s: $(grep -E '^(STATUS|REVISION):' "$WORK/helm.log" | tr '\n' ' ')"
  wait_until 900 "every pod in $KIND_NAMESPACE Ready or Completed" namespace_ready "$KIND_NAMESPACE"
}

# An interrupted earlier run can leave the release pending ("another operation is in progress").
recover_pending_release() {
  helm list -n "$KIND_NAMESPACE" --pending -q | grep -x "$KIND_RELEASE" >/dev/null || return 0
  log "release $KIND_RELEASE is stuck in a pending state (interrupted run?): rolling it back"
  helm rollback "$KIND_RELEASE" -n "$KIND_NAMESPACE" --wait --timeout 5m >/dev/null 2>&1 ||
    helm uninstall "$KIND_RELEASE" -n "$KIND_NAMESPACE" --wait --timeout 5m >/dev/null ||
    die "cannot recover the pending release $KIND_RELEASE." "Run 'helm uninstall $KIND_RELEASE -n $KIND_NAMESPACE' (KUBECONFIG=$KIND_KUBECONFIG) and retry."
}

print_summary() {
  step finished "platform up in $(elapsed)s"
  cat <<SUMMARY
  kubeconfig:  export KUBECONFIG=$KIND_KUBECONFIG
  Airflow UI:  kubectl -n $KIND_NAMESPACE port-forward svc/$KIND_RELEASE-api-server 8080:8080  ->  http://localhost:8080
               user admin, password: kubectl -n $KIND_NAMESPACE get secret mlops-kind-admin -o go-template='{{.data.password | base64decode}}'
  git (DAGs):  $(ssh-keygen -l -f "$KIND_KNOWN_HOSTS" | awk '{print $2}') is the pinned host key of $GIT_SERVER_HOST
  serving:     curl -H 'Host: <model>.<serving domain>' http://127.0.0.1:18080/invocations -d @request.json
  next:        make kind-test (end-to-end tests)   make kind-down (delete the cluster)
SUMMARY
}
