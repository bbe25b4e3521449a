# One real Kubernetes node for the local control plane (`k8s`): kubelet and kube-proxy v1.34.4 and
# CoreDNS from the shared tool set (../shared/tools/k8s/node), run by Debian's containerd and runc
# on a CNI bridge of this machine. Pods really run, resolve Service names, pass their probes and
# keep their claims' data across restarts; the node pulls the project's images from the local
# registry (image-registry, 127.0.0.1:5000, plain HTTP). Pods never reach outside this machine.
# Beside the kwok node of `k8s` (fake pods): a stack picks its node with the nodeSelector setting
# (README, "Kubernetes"). About 10 s to Ready, ~280 MB. Started only when named, after k8s:
#   scripts/services up k8s k8s-node image-registry      (and `down k8s-node`)
# The node's containerd keeps its images between runs ($PIPELINE_HOME/tools/k8s/run/node); `down
# k8s` wipes the cluster (etcd) but not those.
# Sourced by scripts/services; see the convention at its top.

k8s_node_opt_in() { :; }
SYSTEM_DEPS[k8s-node]="containerd runc containernetworking-plugins iptables"

k8s_node_install() {
  apt_install containerd runc containernetworking-plugins iptables
  # The same unpack as k8s (it unpacks the node kit too); idempotent.
  "$(shared_tools)/install.sh" k8s "$(_k8s_dest)" >/dev/null
}

# The Node's name: this machine's host name, as the kubelet registers it.
k8s_node_name() { hostname | tr 'A-Z' 'a-z'; }

k8s_node_start() {
  _k8s_env
  k8s_running || die "k8s-node: the control plane is not running; start it first: scripts/services up k8s k8s-node"
  # The kubelet must be reachable at the node's name: the apiserver dials it there for logs/exec.
  getent ahostsv4 "$(k8s_node_name)" >/dev/null || die "k8s-node: host name $(k8s_node_name) does not resolve; add '127.0.0.1 $(k8s_node_name)' to /etc/hosts"
  # Returns once the node is Ready and CoreDNS answers; the daemons outlive this call (9>&-: not our lock).
  "$K8S_BIN/start-node.sh" >>"$(svc_log k8s-node)" 2>&1 9>&- || { tail -20 "$(svc_log k8s-node)" >&2; die "k8s-node: start-node.sh failed; see $(svc_log k8s-node) and $K8S_RUN/logs"; }
}

k8s_node_running() {
  _k8s_env
  local f="$K8S_RUN/pids/kubelet.pid"
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

k8s_node_healthy() {
  _kubectl get node "$(k8s_node_name)" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True
}

k8s_node_timeout() { echo 240; }

# Stops kube-proxy, the kubelet, every pod and containerd, and removes the bridge and rules; the
# images stay (the next start imports nothing again). The Node object goes too: a stopped node's
# pods would otherwise be evicted minutes later by the node lifecycle controller.
k8s_node_stop() {
  _k8s_env
  "$K8S_BIN/stop-node.sh" >>"$(svc_log k8s-node)" 2>&1 || true
  k8s_running && _kubectl delete node "$(k8s_node_name)" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}

k8s_node_where() {
  _k8s_env
  printf 'node %s (containerd %s)' "$(k8s_node_name)" "$K8S_RUN/node/containerd/containerd.sock"
}

k8s_node_env() {
  _k8s_env
  printf 'K8S_NODE=%s\nK8S_NODE_CONTAINERD=%s\nK8S_CRICTL=%s\n' "$(k8s_node_name)" "$K8S_RUN/node/containerd/containerd.sock" "$K8S_BIN/crictl"
}
