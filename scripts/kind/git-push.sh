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
