#!/usr/bin/env bash
# Builds the stand-ins for the upstream images the stacks pin that ../shared/imgkit does not make
# (no container registry is reachable here), under the upstream names, from Debian packages:
#   prom/prometheus:v2.42.0                                    prometheus/ (Debian's prometheus 2.42.0)
#   quay.io/prometheuscommunity/postgres-exporter:v0.11.1      postgres-exporter/ (Debian's 0.11.1)
#   prom/pushgateway:v1.5.1                                    pushgateway/ (Debian's 1.5.1)
#   prom/statsd-exporter:v0.28.0                               statsd-exporter/ (go install of the tag)
#   prom/node-exporter:v1.5.0                                  node-exporter/ (Debian's 1.5.0)
# A folder with a go-install file (module@version) gets that program built on this host first
# (Go and the module proxy; the binary is kept under $PIPELINE_HOME/downloads) beside its Dockerfile.
# Each image carries the hash of its folder as a label; an image whose hash matches is kept, so a
# second run takes a second. Needs DOCKER_HOST and debian:bookworm-slim (imgkit's). Usage:
#   images/upstream/build.sh [name ...]     (default: all)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# name -> image, kept in step with infra/catalog/images.ts (tests/unit/infra/monitoring.test.ts checks it)
declare -A IMAGES=(
  [prometheus]="prom/prometheus:v2.42.0"
  [postgres-exporter]="quay.io/prometheuscommunity/postgres-exporter:v0.11.1"
  [pushgateway]="prom/pushgateway:v1.5.1"
  [statsd-exporter]="prom/statsd-exporter:v0.28.0"
  [node-exporter]="prom/node-exporter:v1.5.0"
)

# The build context: the folder, plus the Go program its go-install file names.
context_of() {
  local name="$1" module bin cache ctx
  if [ ! -f "$here/$name/go-install" ]; then printf '%s' "$here/$name"; return 0; fi
  module="$(tr -d '[:space:]' <"$here/$name/go-install")"
  bin="$(basename "${module%@*}")"
  cache="${PIPELINE_HOME:-$HOME/.cache/realtime-pipeline}/downloads/go-bin/${module//[\/@]/_}"
  if [ ! -x "$cache/$bin" ]; then
    echo "$name: go install $module" >&2
    mkdir -p "$cache.tmp"
    CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$cache.tmp" nice -n 10 go install "$module" >&2
    rm -rf "$cache" && mv "$cache.tmp" "$cache"
  fi
  ctx="$(mktemp -d)"
  cp -R "$here/$name/." "$ctx/" && cp "$cache/$bin" "$ctx/$bin"
  printf '%s' "$ctx"
}

build_one() {
  local name="$1" image="${IMAGES[$1]}" hash have t0
  hash="$(cd "$here/$name" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  have="$(docker image inspect -f '{{index .Config.Labels "org.pipeline.standin-hash"}}' "$image" 2>/dev/null || true)"
  if [ "$have" = "$hash" ]; then echo "$image: up to date"; return 0; fi
  t0=$(date +%s)
  echo "$image: building (stand-in from $name/Dockerfile)"
  # the host's network: RUN steps reach the Debian mirror as imgkit's builds do
  local ctx; ctx="$(context_of "$name")"
  if ! nice -n 10 docker build -q --network host --label "org.pipeline.standin-hash=$hash" -t "$image" "$ctx" >"${TMPDIR:-/tmp}/standin-$name.log" 2>&1; then
    tail -30 "${TMPDIR:-/tmp}/standin-$name.log" >&2
    echo "$image: the build failed (log above)" >&2
    return 1
  fi
  [ "$ctx" = "$here/$name" ] || rm -rf "$ctx"
  echo "$image: built in $(( $(date +%s) - t0 ))s"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!IMAGES[@]}")
for n in "${names[@]}"; do
  [ -n "${IMAGES[$n]:-}" ] || { echo "unknown stand-in $n (known: ${!IMAGES[*]})" >&2; exit 2; }
  build_one "$n"
done
