# A local container image registry (Debian's `docker-registry`, the CNCF distribution registry) on
# 127.0.0.1:5000, storage in $RUN/image-registry/data. The staging and prod stacks push the images
# they build here in `npm run test:stacks` (`registry: 127.0.0.1:5000`); a Docker engine treats a
# loopback registry as plain HTTP without being told. No auth: it listens on loopback only.
# Started only when named:
#   scripts/services up image-registry      (and `down image-registry`: a bare down leaves it alone)
# Sourced by scripts/services; see the convention at its top.

image_registry_opt_in() { :; }
SYSTEM_DEPS[image-registry]="docker-registry"

IMAGE_REGISTRY_PORT=5000

image_registry_install() {
  apt_install docker-registry
  # The package enables its own instance on :5000 (every interface); ours replaces it on loopback.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
}

image_registry_start() {
  local d; d="$(svc_dir image-registry)"
  mkdir -p "$d/data"
  cat >"$d/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$IMAGE_REGISTRY_PORT
YAML
  port_open "$IMAGE_REGISTRY_PORT" && die "port $IMAGE_REGISTRY_PORT is taken by another process (not ours)"
  spawn image-registry /usr/bin/docker-registry serve "$d/config.yml"
}

image_registry_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$IMAGE_REGISTRY_PORT/v2/" >/dev/null; }

image_registry_where() { printf '127.0.0.1:%s (http)' "$IMAGE_REGISTRY_PORT"; }

image_registry_env() { printf 'IMAGE_REGISTRY=127.0.0.1:%s\n' "$IMAGE_REGISTRY_PORT"; }
