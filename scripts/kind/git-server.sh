# shellcheck shell=bash disable=SC2034
# Step of scripts/kind-up that runs the in-cluster SSH git server (scripts/kind/git-server.yaml):
# its host key and kind-up's push key (Secrets, generated once), the git-sync deploy key and the
# known_hosts pinned from the host key (deploy-key.sh), the authorized keys. Sourced after
# lib.sh and deploy-key.sh. Sets HOST_PUB (the host's public key) for the push step.

GIT_SERVER_MANIFEST=$KIND_REPO/scripts/kind/git-server.yaml

start_git_server() {
  step git-server "in-cluster SSH git server ($GIT_SERVER_HOST)"
  if ! secret_exists git-server-host-keys; then
    ssh-keygen -q -t ed25519 -N "" -C "git-server.$KIND_NAMESPACE" -f "$WORK/ssh_host_ed25519_key"
    create_secret_once git-server-host-keys \
      "ssh_host_ed25519_key=$WORK/ssh_host_ed25519_key" "ssh_host_ed25519_key.pub=$WORK/ssh_host_ed25519_key.pub"
  fi
  # kind-up's own push key (also used by the kind tests to push a new DAG).
  if ! secret_exists git-server-pusher; then
    ssh-keygen -q -t ed25519 -N "" -C "kind-up-pusher" -f "$WORK/pusher"
    create_secret_once git-server-pusher "id_ed25519=$WORK/pusher" "id_ed25519.pub=$WORK/pusher.pub"
  fi
  HOST_PUB=$(secret_value git-server-host-keys ssh_host_ed25519_key.pub)
  printf '%s\n' "$HOST_PUB" >"$WORK/host_key.pub"
  # The git-sync deploy key (Secret mlops-git-ssh, key gitSshKey) and the known_hosts pinned from
  # the host key Secret, both by scripts/gitsync-bootstrap.
  ensure_deploy_key "$WORK" "$WORK/host_key.pub" "$KIND_KNOWN_HOSTS"
  write_authorized_keys
  local keys_checksum
  keys_checksum=$( (
    printf '%s\n' "$HOST_PUB"
    cat "$WORK/authorized_keys"
  ) | git hash-object --stdin)
  if [[ "$KIND_PROVIDER" == realnode ]]; then
    sed "s|@KEYS_CHECKSUM@|$keys_checksum|" "$GIT_SERVER_MANIFEST" | place_git_server | kc apply -f - >/dev/null
  else
    sed "s|@KEYS_CHECKSUM@|$keys_checksum|" "$GIT_SERVER_MANIFEST" | kc apply -f - >/dev/null
  fi
  wait_until 180 "git server rollout" kc rollout status -n "$KIND_NAMESPACE" deployment/git-server --timeout=5s
}

# write_authorized_keys: the deploy key and the push key, in the Secret git-server-authorized-keys
# (applied only when they changed).
write_authorized_keys() {
  local pusher_pub
  pusher_pub=$(secret_value git-server-pusher id_ed25519.pub)
  # "type base64" only: comments differ between a generated key and one re-derived from a Secret.
  printf '%s\n%s\n' "$(cut -d' ' -f1,2 <<<"$DEPLOY_PUB")" "$(cut -d' ' -f1,2 <<<"$pusher_pub")" >"$WORK/authorized_keys"
  if secret_exists git-server-authorized-keys &&
    [[ "$(secret_value git-server-authorized-keys authorized_keys)" == "$(cat "$WORK/authorized_keys")" ]]; then
    log "authorized keys unchanged"
  else
    kc create secret generic git-server-authorized-keys -n "$KIND_NAMESPACE" \
      --from-file="authorized_keys=$WORK/authorized_keys" --dry-run=client -o yaml | kc apply -f - >/dev/null
    log "authorized keys: deploy key + push key"
  fi
}
