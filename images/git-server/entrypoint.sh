#!/usr/bin/env bash
# Entrypoint of the in-cluster SSH git server (images/git-server).
#
#   git-server-entrypoint          prepare, then run sshd in the foreground (logs on stderr)
#   git-server-entrypoint check    prepare, then `sshd -t` (config test) and exit
#
# Prepare = (1) copy the host keys from the mounted Secret (known_hosts is pinned from their
# public halves before Airflow is installed, so they are never generated here), (2) build
# authorized_keys from the mounted public keys, each one restricted (no pty, no forwarding),
# (3) create the bare repositories (idempotent: an existing repository is left untouched),
# (4) write sshd_config into the state directory. Every path is an environment variable so
# the tests run this script for real with a temporary root.
set -euo pipefail

root=${GIT_SERVER_ROOT:-/srv/git}
repos=${GIT_SERVER_REPOS:-platform}
branch=${GIT_SERVER_BRANCH:-main}
state=${GIT_SERVER_STATE_DIR:-/run/git-server}
port=${GIT_SERVER_PORT:-2222}
listen=${GIT_SERVER_LISTEN:-0.0.0.0}
host_keys_dir=${GIT_SERVER_HOST_KEYS_DIR:-/etc/git-server/host-keys}
authorized_src=${GIT_SERVER_AUTHORIZED_KEYS:-/etc/git-server/authorized-keys/authorized_keys}
sshd=${GIT_SERVER_SSHD:-/usr/sbin/sshd}

die() {
  echo "git-server: error: $*" >&2
  exit 1
}
log() { echo "git-server: $*" >&2; }

mode=${1:-serve}
case "$mode" in
  serve | check) ;;
  *) die "unknown argument '$mode' (allowed: serve, check)" ;;
esac

if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
  die "GIT_SERVER_PORT='$port' is not a TCP port (1-65535)"
fi
[[ "$branch" =~ ^[A-Za-z0-9._/-]+$ ]] || die "GIT_SERVER_BRANCH='$branch' is not a valid branch name"
command -v "$sshd" >/dev/null 2>&1 || die "sshd not found at '$sshd' (set GIT_SERVER_SSHD)"

user=$(id -un)
umask 077
mkdir -p "$state"
export HOME="$state" # git writes nothing global, but never into a read-only home

# --- 1. host keys --------------------------------------------------------------------------
[[ -d "$host_keys_dir" ]] || die "host key directory $host_keys_dir is missing: mount the host key Secret there (keys ssh_host_<type>_key + .pub)"
host_key_lines=()
shopt -s nullglob
for key in "$host_keys_dir"/ssh_host_*_key; do
  name=$(basename "$key")
  [[ -f "$key.pub" ]] || die "host key $name has no public half $name.pub in $host_keys_dir"
  # The mounted files may be group-readable symlinks (Secret volume); sshd wants 0600 files.
  install -m 0600 "$key" "$state/$name"
  install -m 0644 "$key.pub" "$state/$name.pub"
  # A private key that does not match its public half would break the pinned known_hosts.
  derived=$(ssh-keygen -y -f "$state/$name" 2>/dev/null) || die "host key $name is not a readable private key without passphrase"
  read -r pub_type pub_b64 _ <"$state/$name.pub" || true
  [[ "$derived" == "$pub_type $pub_b64"* ]] || die "host key $name does not match $name.pub"
  host_key_lines+=("HostKey $state/$name")
  log "host key $(ssh-keygen -l -f "$state/$name.pub")"
done
shopt -u nullglob
((${#host_key_lines[@]} > 0)) || die "no host keys (ssh_host_<type>_key) in $host_keys_dir"

# --- 2. authorized_keys -----------------------------------------------------------------------
[[ -f "$authorized_src" ]] || die "authorized keys file $authorized_src is missing: mount the public deploy key(s) there"
tmp_keys="$state/authorized_keys.new"
: >"$tmp_keys"
count=0
lineno=0
while IFS= read -r line || [[ -n "$line" ]]; do
  lineno=$((lineno + 1))
  line=${line%$'\r'}
  [[ -z "${line//[[:space:]]/}" || "$line" =~ ^[[:space:]]*# ]] && continue
  # Plain public keys only: options are set here, never taken from the Secret.
  if ! [[ "$line" =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)[[:space:]]+[A-Za-z0-9+/=]+([[:space:]].*)?$ ]]; then
    die "$authorized_src line $lineno is not a plain public key ('<type> <base64> [comment]', no options)"
  fi
  printf '%s\n' "$line" >"$state/key.check"
  ssh-keygen -l -f "$state/key.check" >/dev/null 2>&1 || die "$authorized_src line $lineno: ssh-keygen cannot read this public key"
  printf 'restrict %s\n' "$line" >>"$tmp_keys"
  count=$((count + 1))
done <"$authorized_src"
rm -f "$state/key.check"
((count > 0)) || die "$authorized_src holds no public key"
mv -f "$tmp_keys" "$state/authorized_keys"
log "authorized_keys: $count key(s)"

# --- 3. repositories ---------------------------------------------------------------------
mkdir -p "$root"
for repo in $repos; do
  [[ "$repo" =~ ^[A-Za-z0-9._-]+$ && "$repo" != .* ]] || die "repository name '$repo' (GIT_SERVER_REPOS) must match [A-Za-z0-9._-]+"
  dir="$root/$repo.git"
  if [[ -f "$dir/HEAD" ]]; then
    log "repository $dir exists ($(git --git-dir="$dir" rev-parse --verify --quiet "refs/heads/$branch" || echo "no $branch yet"))"
    continue
  fi
  (umask 022 && git init --quiet --bare "$dir")
  # HEAD names the default branch, so clients that do not ask for a branch get `main`.
  git --git-dir="$dir" symbolic-ref HEAD "refs/heads/$branch"
  log "repository $dir created (default branch $branch)"
done

# --- 4. sshd_config ------------------------------------------------------------------------
# StrictModes is off: the state directory lives on an emptyDir whose parents sshd would judge
# group-writable; every file sshd reads here was written above with mode 0600/0644.
if [[ $(id -u) -eq 0 ]]; then
  permit_root=prohibit-password # only when run outside the image (tests on a dev machine)
  mkdir -p /run/sshd            # privilege separation directory, needed only as root
else
  permit_root=no
fi
{
  echo "# generated by git-server-entrypoint"
  echo "Port $port"
  echo "ListenAddress $listen"
  printf '%s\n' "${host_key_lines[@]}"
  echo "PidFile $state/sshd.pid"
  echo "AuthorizedKeysFile $state/authorized_keys"
  echo "AllowUsers $user"
  echo "PermitRootLogin $permit_root"
  echo "PubkeyAuthentication yes"
  echo "PasswordAuthentication no"
  echo "KbdInteractiveAuthentication no"
  echo "HostbasedAuthentication no"
  echo "PermitEmptyPasswords no"
  echo "PermitUserEnvironment no"
  echo "AllowTcpForwarding no"
  echo "AllowStreamLocalForwarding no"
  echo "AllowAgentForwarding no"
  echo "X11Forwarding no"
  echo "PermitTunnel no"
  echo "PrintMotd no"
  echo "StrictModes no"
  echo "ClientAliveInterval 30"
  echo "LogLevel INFO"
} >"$state/sshd_config"

if [[ "$mode" == check ]]; then
  "$sshd" -t -f "$state/sshd_config"
  log "configuration ok"
  exit 0
fi
log "listening on $listen:$port as $user; repositories: $repos (branch $branch) under $root"
exec "$sshd" -D -e -f "$state/sshd_config"
