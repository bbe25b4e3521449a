# The Pulumi engine for `npm run test:stacks`: the CLI, the nodejs language host and the random,
# docker and kubernetes providers at the versions package.json pins, unpacked from the team's
# shared tool set (../shared/tools, override with PIPELINE_SHARED) into $PIPELINE_HOME/tools/pulumi.
# A tool, not a process: "running" means installed. No plugin is ever downloaded
# (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION). Started only when named:
#   scripts/services up pulumi      (and `down pulumi`: a bare down leaves it alone)
# Sourced by scripts/services; see the convention at its top.

pulumi_opt_in() { :; }

_pulumi_dest() { printf '%s' "$PIPELINE_HOME/tools/pulumi"; }

# The shared tool set: beside the repository in CI and in worktrees, or where PIPELINE_SHARED says.
shared_tools() {
  local d="${PIPELINE_SHARED:-$REPO/../shared}"
  [ -x "$d/tools/install.sh" ] || die "no shared tool set at $d/tools (set PIPELINE_SHARED to the folder holding tools/install.sh)"
  printf '%s' "$(cd "$d/tools" && pwd)"
}

pulumi_install() {
  "$(shared_tools)/install.sh" pulumi "$(_pulumi_dest)" >/dev/null
}

pulumi_start() { :; }
pulumi_stop() { :; }
pulumi_running() { [ -x "$(_pulumi_dest)/bin/pulumi" ]; }
pulumi_healthy() { PULUMI_HOME="$(_pulumi_dest)/home" PULUMI_SKIP_UPDATE_CHECK=1 "$(_pulumi_dest)/bin/pulumi" version >/dev/null; }

pulumi_where() {
  if pulumi_running; then
    printf '%s (CLI %s; plugins in %s)' "$(_pulumi_dest)/bin/pulumi" \
      "$(PULUMI_HOME="$(_pulumi_dest)/home" PULUMI_SKIP_UPDATE_CHECK=1 "$(_pulumi_dest)/bin/pulumi" version 2>/dev/null)" "$(_pulumi_dest)/home/plugins"
  else
    printf 'not installed'
  fi
}

# Read by tests/stacks (with the env of the other services): the CLI's folder and its home.
pulumi_env() {
  printf 'PULUMI_BIN_DIR=%s\nPULUMI_HOME=%s\n' "$(_pulumi_dest)/bin" "$(_pulumi_dest)/home"
}
