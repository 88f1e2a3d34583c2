# shellcheck shell=bash
# push_dags <remote> <clone-dir>: make branch $GIT_BRANCH of <remote> hold this checkout's dags/
# (the working tree's files: tracked + untracked, minus what .gitignore excludes) under dags/.
# Idempotent: clones the branch, replaces dags/, commits and pushes only when something changed
# (history is kept, so git-sync sees one new commit per change). Uses $GIT_SSH_COMMAND.
# Sourced by scripts/kind-up; tested against a real sshd in tests/scripts/test_kind_git_push.py.
push_dags() {
  local remote=$1 clone=$2 f
  git_q() { git -c user.name="kind-up" -c user.email="kind-up@mlops.local" -c init.defaultBranch="$GIT_BRANCH" "$@"; }
  git_q clone --quiet "$remote" "$clone" 2>"$clone.err" || die "git clone $remote failed:" "$(cat "$clone.err")"
  if git_q -C "$clone" rev-parse --verify --quiet "refs/remotes/origin/$GIT_BRANCH" >/dev/null; then
    git_q -C "$clone" checkout --quiet -B "$GIT_BRANCH" "origin/$GIT_BRANCH"
  else
    git_q -C "$clone" checkout --quiet --orphan "$GIT_BRANCH" 2>/dev/null || true # empty repository
  fi
  rm -rf "$clone/dags"
  mkdir -p "$clone/dags"
  while IFS= read -r -d '' f; do
    [[ -f "$KIND_REPO/$f" ]] || continue
    mkdir -p "$clone/$(dirname "$f")"
    cp "$KIND_REPO/$f" "$clone/$f"
  done < <(cd "$KIND_REPO" && git ls-files --cached --others --exclude-standard -z -- dags)
  git_q -C "$clone" add -A
  if git_q -C "$clone" rev-parse --verify --quiet HEAD >/dev/null && git_q -C "$clone" diff --cached --quiet; then
    log "branch $GIT_BRANCH already holds this dags/ ($(git_q -C "$clone" rev-parse --short HEAD))"
    return 0
  fi
  git_q -C "$clone" commit --quiet -m "kind-up: dags/ of $(git -C "$KIND_REPO" rev-parse --short HEAD 2>/dev/null || echo 'the working tree')"
  git_q -C "$clone" push --quiet origin "HEAD:refs/heads/$GIT_BRANCH" 2>"$clone.err" || die "git push to $remote failed:" "$(cat "$clone.err")"
  log "pushed $(git_q -C "$clone" rev-parse --short HEAD): $(find "$clone/dags" -type f | wc -l | tr -d ' ') files under dags/"
}

# push_dags_to_cluster: the push step of scripts/kind-up: through a port-forward to the git
# server, with kind-up's push key and a known_hosts pinned from $HOST_PUB (start_git_server).
push_dags_to_cluster() {
  step git-push "dags/ -> $GIT_SERVER_REPO_PATH branch $GIT_BRANCH"
  local host_key_type host_key_b64
  read -r host_key_type host_key_b64 _ <<<"$HOST_PUB"
  secret_value git-server-pusher id_ed25519 >"$WORK/pusher_key"
  chmod 600 "$WORK/pusher_key"
  port_forward svc/git-server 22
  PIDS_TO_STOP+=("$PF_PID")
  printf '[127.0.0.1]:%s %s %s\n' "$PF_PORT" "$host_key_type" "$host_key_b64" >"$WORK/known_hosts_local"
  export GIT_SSH_COMMAND="ssh -i $WORK/pusher_key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$WORK/known_hosts_local -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=15"
  push_dags "ssh://$GIT_PUSH_USER@127.0.0.1:$PF_PORT$GIT_PUSH_REPO_PATH" "$WORK/platform"
  kill "$PF_PID" 2>/dev/null || true
}
