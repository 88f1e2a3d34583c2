# shellcheck shell=bash
# The git-sync deploy key and pinned known_hosts of the kind platform, made by
# scripts/gitsync-bootstrap (Secret mlops-git-ssh, data key gitSshKey). Sourced by kind-up.

DEPLOY_KEY_SECRET=mlops-git-ssh

# ensure_deploy_key <workdir> <host public key file> <known_hosts destination>
# First run: the bootstrap generates the key and creates the Secret. Later runs: the key is read
# back from the Secret and handed to the bootstrap (--key-file), which re-applies the same Secret.
# Either way the bootstrap pins known_hosts from the host key Secret's public half (--host-key,
# no ssh-keyscan: the server is only reachable inside the cluster). Sets DEPLOY_PUB.
ensure_deploy_key() {
  local work=$1 host_pub=$2 known_hosts_dest=$3
  local out="$work/gitsync-bootstrap" args=()
  if secret_exists "$DEPLOY_KEY_SECRET"; then
    (
      umask 077
      secret_value "$DEPLOY_KEY_SECRET" gitSshKey >"$work/existing-deploy-key"
    )
    args+=(--key-file "$work/existing-deploy-key")
    log "deploy key: reusing Secret $DEPLOY_KEY_SECRET"
  else
    log "deploy key: generating (Secret $DEPLOY_KEY_SECRET)"
  fi
  KUBECONFIG="$KIND_KUBECONFIG" "$KIND_REPO/scripts/gitsync-bootstrap" \
    --host "$GIT_SERVER_HOST" --repo-path "$GIT_SERVER_REPO_PATH" --branch "$GIT_BRANCH" \
    --host-key "$host_pub" --secret-name "$DEPLOY_KEY_SECRET" --namespace "$KIND_NAMESPACE" \
    --out-dir "$out" "${args[@]+"${args[@]}"}" >"$work/bootstrap.log" 2>&1 ||
    die "scripts/gitsync-bootstrap failed:" "$(cat "$work/bootstrap.log")"
  # Its fingerprint lines, for the user to see which host key git-sync trusts.
  grep -E '^   [0-9]+ SHA256:' "$work/bootstrap.log" | while read -r line; do log "pinned: $line"; done || true
  [[ -s "$out/known_hosts" && -s "$out/gitSshKey.pub" ]] ||
    die "scripts/gitsync-bootstrap did not leave known_hosts and gitSshKey.pub in $out:" "$(cat "$work/bootstrap.log")"
  cp "$out/known_hosts" "$known_hosts_dest"
  # shellcheck disable=SC2034 # read by kind-up
  DEPLOY_PUB=$(cat "$out/gitSshKey.pub")
  rm -f "$out/gitSshKey" "$work/existing-deploy-key"
}
