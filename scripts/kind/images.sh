# shellcheck shell=bash
# Step of scripts/kind-up that puts the platform's images on the nodes: `docker build` of every
# images/<name>/Dockerfile under the name values/kind.yaml gives it (scripts/images-refs renders
# the chart: mlops.local/<name>:dev; the git server's fixed name), then `kind load`.
# Sourced after lib.sh.

build_and_load_images() {
  step images "docker build images/* under the names of values/kind.yaml, kind load"
  local dockerfile dir name ref t names=() refs
  for dockerfile in "$KIND_REPO"/images/*/Dockerfile; do names+=("$(basename "$(dirname "$dockerfile")")"); done
  refs=$("$KIND_VENV_PY" "$KIND_REPO/scripts/images-refs" --values "$KIND_REPO/values/kind.yaml" "${names[@]}") ||
    die "scripts/images-refs could not name the images (output above)."
  while IFS=$'\t' read -r name ref; do
    dir=$KIND_REPO/images/$name
    dockerfile=$dir/Dockerfile
    t=$SECONDS
    run_logged "docker build $ref" "$WORK/build-$name.log" docker build -t "$ref" -f "$dockerfile" "$dir" || {
      tail -n 40 "$WORK/build-$name.log" >&2
      die "docker build of $ref failed (last lines above)."
    }
    load_image "$ref" "$name"
    log "$ref $(docker image inspect -f '{{.Id}}' "$ref" | cut -c8-19) on the nodes ($((SECONDS - t))s)"
  done <<<"$refs"
}

# load_image <ref> <name>: kind load compares image IDs and skips nodes that already have this
# exact image.
load_image() {
  local ref=$1 name=$2 platform
  run_logged "kind load $ref" "$WORK/load-$name.log" kind load docker-image "$ref" --name "$KIND_CLUSTER" && return 0
  # Docker's containerd image store (default in Docker 29 / recent Docker Desktop) can make
  # `kind load docker-image` fail with "content digest ... not found" (kind issue #3795);
  # kind's documented workaround: save one platform to an archive and load that.
  platform=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$ref")
  log "kind load docker-image failed ($(tail -n 1 "$WORK/load-$name.log" | cut -c1-80)); retrying via a $platform archive"
  if ! run_logged "docker image save $ref" "$WORK/load-$name.log" \
    docker image save --platform "$platform" -o "$WORK/$name.tar" "$ref" ||
    ! run_logged "kind load image-archive $ref" "$WORK/load-$name.log" \
      kind load image-archive "$WORK/$name.tar" --name "$KIND_CLUSTER"; then
    cat "$WORK/load-$name.log" >&2
    die "kind load of $ref failed (output above)." \
      "With Docker's containerd image store, turn it off (Docker Desktop: Settings > General >" \
      "'Use containerd for pulling and storing images'; Docker Engine: \"features\": {\"containerd-snapshotter\": false}" \
      "in /etc/docker/daemon.json), then run 'make kind-up' again."
  fi
  rm -f "$WORK/$name.tar"
}
