# A real Kubernetes 1.34 control plane for `npm run test:stacks`: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (fake nodes: pods become Ready, Jobs' pods
# Succeeded; no container really runs), from the shared tool set (../shared/tools, see pulumi.sh).
# API server on 127.0.0.1:16443, a default StorageClass `standard` over a pool of PersistentVolumes
# (every access mode), kubeconfig in $PIPELINE_HOME/tools/k8s/kubeconfig. About 12 s to start.
# A throwaway test cluster: `down` wipes its etcd data, so the next `up` starts empty with a full
# pool of volumes. Started only when named:
#   scripts/services up k8s      (and `down k8s`: a bare down leaves it alone)
# Sourced by scripts/services; see the convention at its top.

k8s_opt_in() { :; }

K8S_API_PORT=16443
# Claims of staging and prod together, with room for a re-run before a `down`.
K8S_PV_POOL=48

_k8s_dest() { printf '%s' "$PIPELINE_HOME/tools/k8s"; }
_k8s_env() {
  export K8S_BIN K8S_RUN KUBECONFIG_OUT
  K8S_BIN="$(_k8s_dest)/bin" K8S_RUN="$(_k8s_dest)/run" KUBECONFIG_OUT="$(_k8s_dest)/kubeconfig"
  export API_PORT="$K8S_API_PORT"
}
_kubectl() { _k8s_env; "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

k8s_install() {
  "$(shared_tools)/install.sh" k8s "$(_k8s_dest)" >/dev/null
}

k8s_start() {
  _k8s_env
  port_open "$K8S_API_PORT" && die "port $K8S_API_PORT is taken by another process (not ours)"
  mkdir -p "$(svc_dir k8s)"
  # Returns once the API is ready, the node is Ready and the storage exists; it records its own pids.
  # 9>&-: the cluster outlives this call; it must not hold the lock of scripts/services (fd 9).
  "$K8S_BIN/start-cluster.sh" --pv-pool="$K8S_PV_POOL" >>"$(svc_log k8s)" 2>&1 9>&- || { tail -20 "$(svc_log k8s)" >&2; die "k8s: start-cluster.sh failed; see $(svc_log k8s) and $K8S_RUN/logs"; }
}

k8s_running() {
  _k8s_env
  local f="$K8S_RUN/pids/kube-apiserver.pid"
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

k8s_healthy() {
  _kubectl get --raw /readyz >/dev/null 2>&1 && _kubectl get node kwok-node-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True
}

k8s_timeout() { echo 120; }

k8s_stop() {
  _k8s_env
  # A node without its control plane would evict nothing and answer no one: it goes first.
  if k8s_node_running; then k8s_node_stop; fi
  "$K8S_BIN/stop-cluster.sh" --wipe >>"$(svc_log k8s)" 2>&1 || true
  rm -rf "$K8S_RUN/pv"
}

k8s_where() { printf 'https://127.0.0.1:%s (KUBECONFIG=%s)' "$K8S_API_PORT" "$(_k8s_dest)/kubeconfig"; }

k8s_env() {
  printf 'K8S_KUBECONFIG=%s\nK8S_KUBECTL=%s\n' "$(_k8s_dest)/kubeconfig" "$(_k8s_dest)/bin/kubectl"
}
