# A Docker engine of our own, for the dev stack (`pulumi up -s dev`) and its test ring: Debian's
# docker.io (dockerd 20.10, classic builder) run as root with its own data-root, exec-root,
# pidfile and socket under $PIPELINE_HOME, so it never meets a system engine. Then the upstream
# images the stack runs, rebuilt here by ../shared/imgkit (no container registry is reachable:
# see its README); that step skips what is already built, so only the first `up` is slow.
#
# OPT-IN: a bare `scripts/services up` does not start it (the integration tests do not need it);
# name it: `scripts/services up docker`, `scripts/services down docker`.
# services.env gets DOCKER_HOST. Override: PIPELINE_SHARED (where shared/ is, default
# $REPO/../shared), DOCKER_IMAGE_SET=0 (start the engine only, build no image).
# Sourced by scripts/services; see the convention at its top.

DOCKER_RUN="$RUN/docker"
DOCKER_SOCK="$DOCKER_RUN/docker.sock"
DOCKER_PIDFILE="$DOCKER_RUN/dockerd.pid"

docker_opt_in() { :; }

_docker_shared() { printf '%s' "${PIPELINE_SHARED:-$REPO/../shared}"; }
_docker() { DOCKER_HOST="unix://$DOCKER_SOCK" docker "$@"; }

docker_install() {
  # docker.io: the engine and its client; the rest is what imgkit's build-all.sh runs on the host.
  apt_install docker.io debootstrap zip curl maven python3-pip
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || apt_install golang-go
  [ -x "$(_docker_shared)/imgkit/build-all.sh" ] \
    || die "docker: no image set kit at $(_docker_shared)/imgkit (set PIPELINE_SHARED to the folder holding imgkit/)"
}

docker_start() {
  mkdir -p "$DOCKER_RUN" "$PIPELINE_HOME/docker/root" "$PIPELINE_HOME/docker/exec"
  # dockerd starts its own containerd; a namespace of our own keeps its containers apart from any
  # other engine's on this machine. --ip: published ports default to loopback.
  spawn docker dockerd \
    --data-root "$PIPELINE_HOME/docker/root" --exec-root "$PIPELINE_HOME/docker/exec" \
    --pidfile "$DOCKER_PIDFILE" -H "unix://$DOCKER_SOCK" \
    --containerd-namespace rp --containerd-plugins-namespace rp-plugins --ip 127.0.0.1
}

# The engine's own pidfile: an engine started by hand with the same paths is ours too.
# Right after spawn, dockerd has not written its pidfile yet: the process we spawned counts too.
docker_running() {
  local pid
  if [ -s "$DOCKER_PIDFILE" ]; then
    pid="$(cat "$DOCKER_PIDFILE")"
    kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && return 0
  fi
  pid_alive docker
}

docker_healthy() { _docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

docker_timeout() { echo 60; }

# The upstream images of the stack (imgkit), once; later runs skip what is up to date.
docker_ready() {
  [ "${DOCKER_IMAGE_SET:-1}" = 0 ] && return 0
  local t0 out; t0=$(date +%s)
  mkdir -p "$PIPELINE_HOME/imgkit"
  out="$PIPELINE_HOME/imgkit/build-all.out"
  log "docker: image set (imgkit build-all.sh; progress in $out)"
  # One build-all at a time per work folder (it is not safe to run twice at once).
  if ! ( flock -w 3600 8 || die "docker: $PIPELINE_HOME/imgkit/.lock held for an hour"
         DOCKER_HOST="unix://$DOCKER_SOCK" IMGKIT_WORK="$PIPELINE_HOME/imgkit" \
           "$(_docker_shared)/imgkit/build-all.sh" >"$out" 2>&1 ) 8>"$PIPELINE_HOME/imgkit/.lock"; then
    tail -30 "$out" >&2
    die "docker: the image set did not build; see $out"
  fi
  log "docker: image set ready in $(( $(date +%s) - t0 ))s ($(tail -1 "$out"))"
  # The upstream images imgkit does not make (Prometheus): stand-ins under the upstream names.
  if ! DOCKER_HOST="unix://$DOCKER_SOCK" "$REPO/images/upstream/build.sh" >>"$out" 2>&1; then
    tail -30 "$out" >&2
    die "docker: a stand-in image (images/upstream) did not build; see $out"
  fi
}

docker_stop() {
  local pid i
  pid="$(cat "$DOCKER_PIDFILE" 2>/dev/null)" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  # dockerd stops its containers (10 s each at most) and its containerd before it exits.
  for i in $(seq 1 180); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "docker: still running after 90 s, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$(svc_pidfile docker)" "$(svc_pidfile docker).start"
}

docker_env() { echo "DOCKER_HOST=unix://$DOCKER_SOCK"; }

docker_where() { printf 'unix://%s (data-root %s)' "$DOCKER_SOCK" "$PIPELINE_HOME/docker/root"; }
