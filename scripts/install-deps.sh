#!/usr/bin/env bash
# System packages the local services need, installed only when missing (idempotent,
# non-interactive). Sourced by scripts/services (which then fetches each service's jars in its
# services.d/<name>.sh *_install); can also be run alone: scripts/install-deps.sh [services...]
#
# Helpers defined here: apt_install pkg..., mvn_copy_deps <pom-dir> <dest> [mvn -D args],
# install_system_deps service...

# Debian packages per service (JDK and Maven for every JVM service).
declare -A SYSTEM_DEPS=(
  [postgres]="postgresql util-linux"
  [zookeeper]="zookeeper libslf4j-java openjdk-17-jre-headless"
  [kafka]="openjdk-17-jre-headless maven"
  [schema-registry]="python3.11 python3.11-venv curl"
  [cassandra]="openjdk-17-jre-headless maven"
)

_deps_log() { printf '[install-deps %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

APT_UPDATED="${APT_UPDATED:-}"
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then
    _deps_log "apt-get update"
    _apt_retry apt-get update -q
    APT_UPDATED=1
  fi
  _deps_log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive _apt_retry apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Another engineer (or unattended-upgrades) may hold the dpkg lock for a while: wait for it.
_apt_retry() {
  local i err; err="$(mktemp)"
  for i in $(seq 1 60); do
    if "$@" >/dev/null 2>"$err"; then rm -f "$err"; return 0; fi
    if grep -qiE 'could not get lock|unable to acquire|is another process using it' "$err"; then
      sleep 5; continue
    fi
    cat "$err" >&2; rm -f "$err"; return 1
  done
  rm -f "$err"; _deps_log "dpkg lock still held after 5 minutes"; return 1
}

# mvn_copy_deps <dir-with-pom.xml> <dest-dir> [mvn args]: copy the pom's runtime dependency
# jars into dest, once (dest/.complete marks a finished copy). The pom is built in a scratch
# folder beside dest, so nothing lands in the repo.
mvn_copy_deps() {
  local pomdir="$1" dest="$2"; shift 2
  [ -f "$dest/.complete" ] && return 0
  local work="$dest.build"
  rm -rf "$work" "$dest" && mkdir -p "$work"
  cp "$pomdir/pom.xml" "$work/pom.xml"
  _deps_log "mvn: fetching jars into $dest"
  # Maven's own cache lives in the downloads folder too, so PIPELINE_HOME holds every download.
  if ! (cd "$work" && mvn -B "$@" -Dmaven.repo.local="${DOWNLOADS:?}/m2" -DoutputDirectory="$dest" -DincludeScope=runtime \
        dependency:copy-dependencies >"$work/mvn.log" 2>&1); then
    tail -30 "$work/mvn.log" >&2; return 1
  fi
  touch "$dest/.complete"
}

install_system_deps() {
  local s pkgs=()
  for s in "$@"; do
    # shellcheck disable=SC2206
    [ -n "${SYSTEM_DEPS[$s]:-}" ] && pkgs+=(${SYSTEM_DEPS[$s]})
  done
  [ ${#pkgs[@]} -gt 0 ] || return 0
  apt_install $(printf '%s\n' "${pkgs[@]}" | sort -u)
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ $# -eq 0 ]; then set -- "${!SYSTEM_DEPS[@]}"; fi
  install_system_deps "$@"
fi
