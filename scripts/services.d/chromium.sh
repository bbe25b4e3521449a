# chromium, for screenshots of Prometheus's consoles and pages (tests/stacks/screenshots.ts): Debian's
# `chromium` package, run headless. Installed system-wide with apt-get (it needs its libraries, unlike
# promtool's lone binary), so this wants root, or sudo where there is one.
# A tool, not a process: "running" means installed. Started only when named:
#   scripts/services up chromium
# Sourced by scripts/services; see the convention at its top.

chromium_opt_in() { :; }

_chromium_bin() { printf '%s' "${CHROMIUM:-/usr/bin/chromium}"; }

chromium_install() {
  [ -x "$(_chromium_bin)" ] && return 0
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  log "chromium: apt-get install chromium (about 100 MB with its libraries)"
  # package lists may be missing or stale (a fresh machine): update once, then install
  if ! DEBIAN_FRONTEND=noninteractive _apt_retry $sudo apt-get install -y -q --no-install-recommends chromium; then
    _apt_retry $sudo apt-get update -q || die "chromium: apt-get update failed (run as root, or set CHROMIUM)"
    DEBIAN_FRONTEND=noninteractive _apt_retry $sudo apt-get install -y -q --no-install-recommends chromium \
      || die "chromium: apt-get install chromium failed"
  fi
}

chromium_start() { :; }
chromium_stop() { :; }
chromium_running() { [ -x "$(_chromium_bin)" ]; }
# Debian's /usr/bin/chromium wrapper prints a shell warning on stderr on some machines: read stdout only.
chromium_healthy() { "$(_chromium_bin)" --version >/dev/null 2>&1; }

chromium_where() {
  if chromium_running; then
    printf '%s (%s)' "$(_chromium_bin)" "$("$(_chromium_bin)" --version 2>/dev/null | head -1)"
  else
    printf 'not installed'
  fi
}

# Read by tests/stacks/screenshots.ts (CHROMIUM, else chromium on the PATH).
chromium_env() { printf 'CHROMIUM=%s\n' "$(_chromium_bin)"; }
