# promtool, for the unit ring's checks of the Prometheus rules (tests/unit/monitoring): the binary
# alone, unpacked from Debian's `prometheus` package into $PIPELINE_HOME/tools/promtool. Only the
# .deb is fetched (apt-get download) and unpacked with dpkg-deb: no Prometheus daemon, no system
# user, none of its web assets are installed on the machine.
# A tool, not a process: "running" means installed. Started only when named:
#   scripts/services up promtool      (`npm run test:unit` does this first)
# Sourced by scripts/services; see the convention at its top.

promtool_opt_in() { :; }

_promtool_dest() { printf '%s' "$PIPELINE_HOME/tools/promtool"; }
_promtool_bin() { printf '%s' "$(_promtool_dest)/bin/promtool"; }

promtool_install() {
  [ -x "$(_promtool_bin)" ] && return 0
  local work="$DOWNLOADS/promtool"
  rm -rf "$work" && mkdir -p "$work"
  log "promtool: apt-get download prometheus (about 20 MB)"
  if ! (cd "$work" && apt-get download -q prometheus >/dev/null 2>&1); then
    # no package lists yet (a fresh machine): update them; as root, or with sudo where there is one
    # (a CI runner's user); apt-get download itself needs no root
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
    _apt_retry $sudo apt-get update -q \
      || die "promtool: apt-get update failed (run as root, or install promtool and set PROMTOOL)"
    (cd "$work" && _apt_retry apt-get download prometheus)
  fi
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  mkdir -p "$(_promtool_dest)/bin"
  install -m 755 "$work/root/usr/bin/promtool" "$(_promtool_bin).tmp"
  mv "$(_promtool_bin).tmp" "$(_promtool_bin)"
  rm -rf "$work"
}

promtool_start() { :; }
promtool_stop() { :; }
promtool_running() { [ -x "$(_promtool_bin)" ]; }
promtool_healthy() { "$(_promtool_bin)" --version >/dev/null 2>&1; }

promtool_where() {
  if promtool_running; then
    printf '%s (%s)' "$(_promtool_bin)" "$("$(_promtool_bin)" --version 2>&1 | head -1)"
  else
    printf 'not installed'
  fi
}

# Read by tests/unit/monitoring (PROMTOOL, else this path under PIPELINE_HOME, else PATH).
promtool_env() { printf 'PROMTOOL=%s\n' "$(_promtool_bin)"; }
