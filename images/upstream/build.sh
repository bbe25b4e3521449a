#!/usr/bin/env bash
# Builds the stand-ins for the upstream images the stacks pin that ../shared/imgkit does not make
# (no container registry is reachable here), under the upstream names, from Debian packages:
#   prom/prometheus:v2.42.0   images/upstream/prometheus (Debian's prometheus 2.42.0)
# Each image carries the hash of its folder as a label; an image whose hash matches is kept, so a
# second run takes a second. Needs DOCKER_HOST and debian:bookworm-slim (imgkit's). Usage:
#   images/upstream/build.sh [name ...]     (default: all)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# name -> image, kept in step with infra/catalog/images.ts (tests/unit/infra/monitoring.test.ts checks it)
declare -A IMAGES=([prometheus]="prom/prometheus:v2.42.0")

build_one() {
  local name="$1" image="${IMAGES[$1]}" hash have t0
  hash="$(cd "$here/$name" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  have="$(docker image inspect -f '{{index .Config.Labels "org.pipeline.standin-hash"}}' "$image" 2>/dev/null || true)"
  if [ "$have" = "$hash" ]; then echo "$image: up to date"; return 0; fi
  t0=$(date +%s)
  echo "$image: building (stand-in from $name/Dockerfile)"
  # the host's network: RUN steps reach the Debian mirror as imgkit's builds do
  if ! nice -n 10 docker build -q --network host --label "org.pipeline.standin-hash=$hash" -t "$image" "$here/$name" >"${TMPDIR:-/tmp}/standin-$name.log" 2>&1; then
    tail -30 "${TMPDIR:-/tmp}/standin-$name.log" >&2
    echo "$image: the build failed (log above)" >&2
    return 1
  fi
  echo "$image: built in $(( $(date +%s) - t0 ))s"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!IMAGES[@]}")
for n in "${names[@]}"; do
  [ -n "${IMAGES[$n]:-}" ] || { echo "unknown stand-in $n (known: ${!IMAGES[*]})" >&2; exit 2; }
  build_one "$n"
done
