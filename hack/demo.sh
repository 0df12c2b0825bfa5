#!/usr/bin/env bash
# nodewarden's story on a local cluster, in one command.
#
#   hack/demo.sh        (make demo)       start the demo and tell the story; everything stays up
#   hack/demo.sh down   (make demo-down)  stop every process of the demo and remove its files
#
# REPAIR=1 hack/demo.sh (make demo REPAIR=1) adds a second act: a node whose
# fault never clears (KernelDeadlock, from each agent's NPD kernel monitor
# reading the node's own kernel log file) is drained, then deleted by policy
# node-repair's repair ladder, and replaced by a new node, which the story
# program creates, playing the cloud. It stops and starts agents with
#   hack/demo.sh agent-stop NODE | agent-start NODE   (print the agent's pid)
#
# The demo runs the level-2 local control plane of test/cluster (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kwok with 5
# simulated nodes), `bin/nodewarden controller`, and one `bin/nodewarden-agent`
# per node, each following its own host event log, all as local background
# processes that outlive this script. Their pid files, logs, host event logs
# and the kubeconfig are in one state directory:
#   ${NODEWARDEN_DEMO_DIR:-${XDG_RUNTIME_DIR:-/tmp}/nodewarden-demo}
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/bin
STATE=${NODEWARDEN_DEMO_DIR:-${XDG_RUNTIME_DIR:-/tmp}/nodewarden-demo}
NODES=5
STORY_NODE=node-2
SYSTEM_NS=nodewarden-system
# The second act: make demo REPAIR=1 (make passes command-line variables on
# in the environment).
case ${REPAIR:-} in
"" | 0 | false | no) REPAIR=0 ;;
*) REPAIR=1 ;;
esac
REPAIR_NODE=node-5
REPLACEMENT_NODE=node-6
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

say() { printf '\n==> %s\n' "$*"; }
die() {
	printf '\ndemo: %s\n' "$*" >&2
	exit 1
}

# The pid in pid file $1 if that process is alive and is ours: pids get
# reused, but every process of the demo names the state directory in its
# command line.
ours() {
	local pid
	[[ -f $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] && names_state "$pid" || return 1
	echo "$pid"
}

# names_state PID: whether that process's command line mentions $STATE.
names_state() {
	local args=()
	mapfile -d '' -t args 2>/dev/null <"/proc/$1/cmdline" || return 1
	[[ "${args[*]}" == *"$STATE"* ]]
}

# Processes whose command line names the state directory: the demo's, and
# the control-plane components its cluster process started.
leftovers() {
	local d pid
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		names_state "$pid" && echo "$pid"
	done
	return 0
}

# start NAME CMD...: run CMD in the background, in its own session so that it
# outlives this script and the terminal's ^C, with its pid in run/NAME.pid and
# its output in logs/NAME.log.
start() {
	local name=$1
	shift
	setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$STATE/run/$name.pid" "$@" \
		>"$STATE/logs/$name.log" 2>&1 </dev/null &
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $STATE/run/$name.pid ]] && return 0
		sleep 0.1
	done
	die "$name did not start; see $STATE/logs/$name.log"
}

# stop NAME TIMEOUT: SIGTERM, then SIGKILL after TIMEOUT seconds.
stop() {
	local pid i
	pid=$(ours "$STATE/run/$1.pid") || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "    $1 (pid $pid) did not stop on SIGTERM: killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

down() {
	if [[ ! -d $STATE ]]; then
		echo "demo: nothing to stop ($STATE does not exist)"
		return 0
	fi
	say "Stopping the demo in $STATE"
	local f name
	# nodewarden first, so that it does not report the cluster going away.
	for f in "$STATE"/run/*.pid; do
		[[ -e $f ]] || continue
		name=$(basename "$f" .pid)
		[[ $name == localcluster ]] && continue
		stop "$name" 10 &
	done
	wait
	# The cluster stops its components on SIGTERM; they die with it in any case.
	stop localcluster 40
	# Anything still naming the state directory (e.g. components of a cluster
	# whose process was killed with -9 before the kernel reaped them).
	local pids i
	for ((i = 0; i < 50; i++)); do
		pids=$(leftovers)
		[[ -z $pids ]] && break
		if ((i == 20)); then
			echo "    still running after 2s, killing: $(echo $pids)"
			kill -KILL $pids 2>/dev/null || true
		fi
		sleep 0.1
	done
	pids=$(leftovers)
	[[ -z $pids ]] || die "processes of the demo still running: $(echo $pids)"
	rm -rf "$STATE"
	echo "    every process of the demo has stopped; $STATE removed"
}

kubectl() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }
# kubectl_plugin runs `kubectl nodewarden ARGS` as a user would: kubectl finds
# bin/kubectl-nodewarden on PATH (it looks for a plugin only when the plugin's
# name comes before any flag, so the kubeconfig goes through the environment).
kubectl_plugin() { KUBECONFIG=$STATE/kubeconfig PATH=$BIN:$PATH "$BIN/kubectl" nodewarden "$@"; }

# rbac_only: of the YAML documents on stdin, the ServiceAccounts, RBAC and
# admission policies.
rbac_only() {
	local doc="" line keep=0
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ $line == --- ]]; then
			((keep)) && printf -- '---\n%s' "$doc"
			doc="" keep=0
			continue
		fi
		[[ $line =~ ^kind:\ (ServiceAccount|Role|ClusterRole|RoleBinding|ClusterRoleBinding|ValidatingAdmissionPolicy|ValidatingAdmissionPolicyBinding)$ ]] && keep=1
		doc+=$line$'\n'
	done
	((keep)) && printf -- '---\n%s' "$doc"
	return 0
}

# install_rbac applies the ServiceAccounts, RBAC and admission policy of
# config/default, as `kubectl apply -k config/default` would, but not its
# DaemonSet and Deployment: here the agents and the controller are local
# processes (with the admin kubeconfig).
install_rbac() {
	local kustomize=("$BIN/kustomize" build) out
	[[ -x $BIN/kustomize ]] || kustomize=("$BIN/kubectl" kustomize)
	if ! out=$("${kustomize[@]}" config/default 2>&1); then
		printf '%s\n' "$out" | sed 's/^/    /'
		echo "    warning: config/default does not build; RBAC skipped, the demo goes on"
		return 0
	fi
	if out=$(printf '%s\n' "$out" | rbac_only | kubectl apply -f - 2>&1); then
		echo "    $(grep -c . <<<"$out") objects from config/default: ServiceAccounts, Roles, ClusterRoles, bindings, the agent's admission policy"
	else
		printf '%s\n' "$out" | sed 's/^/    /'
		echo "    warning: RBAC did not apply completely; the demo goes on"
	fi
}

# kernel_monitor KMSG: node-problem-detector's kernel monitor config (the
# kmsg plugin) with the hung-task rules of upstream NPD's kernel-monitor.json,
# reading the file KMSG instead of /dev/kmsg. Its KernelDeadlock is
# permanent: as with NPD, nothing clears it but a new boot.
kernel_monitor() {
	local config
	config=$(
		cat <<'EOF'
{
  "plugin": "kmsg",
  "logPath": "@KMSG@",
  "lookback": "5m",
  "bufferSize": 10,
  "source": "kernel-monitor",
  "conditions": [
    {"type": "KernelDeadlock", "reason": "KernelHasNoDeadlock", "message": "kernel has no deadlock"}
  ],
  "rules": [
    {"type": "temporary", "reason": "TaskHung", "pattern": "task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\."},
    {"type": "permanent", "condition": "KernelDeadlock", "reason": "DockerHung", "pattern": "task docker:\\w+ blocked for more than \\w+ seconds\\."}
  ]
}
EOF
	)
	printf '%s\n' "${config/@KMSG@/$1}"
}

# start_agent NODE: that node's agent, following its own host event log and,
# with REPAIR=1, its own kernel log through NPD's kernel monitor. The nodes
# are simulated, so the built-in health checks, which read this machine's
# /proc and /sys, are off.
start_agent() {
	local node=$1 dir=$STATE/nodes/$1 npd=()
	mkdir -p "$dir"
	: >"$dir/host_event.log"
	if ((REPAIR)); then
		: >"$dir/kmsg"
		kernel_monitor "$dir/kmsg" >"$dir/kernel-monitor.json"
		npd=(--npd-config "$dir/kernel-monitor.json")
	fi
	start "agent-$node" "$BIN/nodewarden-agent" --node-name "$node" --kubeconfig "$STATE/kubeconfig" --namespace "$SYSTEM_NS" \
		--host-event-log "$dir/host_event.log" --metrics-bind-address 0 --health-probe-bind-address 0 \
		--health-checks=false "${npd[@]}"
}

# agent_stop NODE / agent_start NODE: for the second act's story program,
# playing the cloud: the agent of a deleted node's machine stops with it, a
# new node gets its own. Each prints the agent's pid.
agent_stop() {
	local pid
	pid=$(ours "$STATE/run/agent-$1.pid") || die "no agent of $1 is running in $STATE"
	stop "agent-$1" 10 >&2
	rm -f "$STATE/run/agent-$1.pid"
	echo "$pid"
}

agent_start() {
	[[ -s $STATE/kubeconfig ]] || die "no demo is running in $STATE"
	[[ $1 =~ ^[a-z0-9][a-z0-9.-]*$ ]] || die "agent-start: $1 is not a node name"
	REPAIR=1 # the agents of the second act run the kernel monitor
	start_agent "$1"
	echo "$(<"$STATE/run/agent-$1.pid")"
}

# repair_act: the second act (REPAIR=1), once the first has ended.
repair_act() {
	say "The second act: a fault that never clears. A second policy, node-repair: KernelDeadlock, then DeleteNode"
	kubectl apply -f - <<'EOF' | sed 's/^/    /'
apiVersion: nodewarden.io/v1alpha1
kind: RemediationPolicy
metadata:
  name: node-repair
spec:
  nodeSelector: {}                # every node
  conditions:
  - type: KernelDeadlock          # NPD's kernel monitor: a task hung in the kernel; nothing clears it
    status: "True"
  cordon: true
  drain:
    enabled: true
    timeout: 5m
  uncordonOnRecovery: true
  repair:                         # still not recovered 10s after the drain: delete the Node,
    steps:                        # for the cloud (node group, Karpenter) to replace the machine
    - action: DeleteNode
      after: 10s
  maxConcurrent: 1
  maxUnhealthy: 50%
  maxRepairsPerHour: 1            # at most one node deleted an hour
EOF
	echo "    Here the controller runs with the admin kubeconfig. A real install needs the right to delete"
	echo "    Nodes: Helm's controller.rbac.deleteNodes=true, or config/rbac/optional/controller_repair_delete_nodes.yaml."

	say "Waiting for the agents' kernel monitors and the controller"
	if ! "$STATE/bin/story" -act repair -kubeconfig "$STATE/kubeconfig" -node "$REPAIR_NODE" -replacement "$REPLACEMENT_NODE" \
		-kernel-log "$STATE/nodes/$REPAIR_NODE/kmsg" -agents "$ROOT/hack/demo.sh" -policy node-repair -app web -timeout 150s; then
		die "the second act did not finish"
	fi

	say "kubectl get nodes"
	kubectl get nodes | sed 's/^/    /'

	say "The Events of $REPAIR_NODE, which outlive it"
	kubectl get events --field-selector "involvedObject.kind=Node,involvedObject.name=$REPAIR_NODE" --sort-by=.metadata.creationTimestamp \
		-o custom-columns='TYPE:.type,REASON:.reason,FROM:.reportingComponent,MESSAGE:.message' | sed 's/^/    /'
}

# on_exit: if `up` did not finish, say what is left running and how to stop it.
on_exit() {
	local rc=$?
	((rc == 0)) && return
	[[ -d $STATE/run ]] && [[ -n $(leftovers) ]] || return
	printf '\ndemo: stopped before the end (exit %d). What had started keeps running, to look at:\n' "$rc" >&2
	printf '  logs in %s/logs, export KUBECONFIG=%s/kubeconfig; make demo-down stops it all\n' "$STATE" "$STATE" >&2
}

up() {
	local t0=$SECONDS
	cd "$ROOT"
	trap on_exit EXIT
	trap 'exit 130' INT TERM

	# A second `make demo` replaces the first: one cluster at a time.
	if [[ -d $STATE ]]; then
		if [[ -n $(leftovers) ]]; then
			echo "demo: a demo is already running in $STATE; stopping it first (make demo-down does only that)"
		fi
		down
	fi

	say "Building what is missing"
	local missing=0 b
	for b in nodewarden nodewarden-agent kubectl-nodewarden etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwok-stages; do
		[[ -e $BIN/$b ]] || missing=1
	done
	((missing == 0)) || make -s k8s-bins build
	mkdir -p "$STATE"/{bin,run,logs,tmp,nodes}
	go build -o "$STATE/bin/localcluster" ./test/cluster/cmd/localcluster
	go build -o "$STATE/bin/story" ./test/e2e/cmd/demo
	echo "    $("$BIN/nodewarden" version)"

	say "Starting a local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with $NODES simulated nodes"
	# Its files (etcd data, certificates, component logs) go under $STATE/tmp.
	# Simulated nodes only: the story needs five nodes and runs nodewarden as
	# local processes, one agent per node, on any machine (root or not).
	# `make run-local` adds a real kubelet node, and test/install's
	# TestRealNode* run the installs on it.
	TMPDIR=$STATE/tmp start localcluster "$STATE/bin/localcluster" -nodes "$NODES" -real-node=false -kubeconfig-out "$STATE/kubeconfig"
	local i
	for ((i = 0; i < 1200; i++)); do
		[[ -s $STATE/kubeconfig ]] && break
		ours "$STATE/run/localcluster.pid" >/dev/null ||
			{ tail -n 20 "$STATE/logs/localcluster.log" >&2; die "the cluster did not start; see $STATE/logs/localcluster.log"; }
		sleep 0.1
	done
	[[ -s $STATE/kubeconfig ]] || die "the cluster was not up after 2 minutes; see $STATE/logs/localcluster.log"
	kubectl get nodes | sed 's/^/    /'

	say "Installing nodewarden: CRD, namespace, RBAC, a sample policy"
	# The cluster installs the CRDs of config/crd/bases itself.
	kubectl wait --for condition=Established crd/remediationpolicies.nodewarden.io --timeout 30s | sed 's/^/    /'
	kubectl create namespace "$SYSTEM_NS" | sed 's/^/    /'
	install_rbac
	kubectl apply -f - <<'EOF' | sed 's/^/    /'
apiVersion: nodewarden.io/v1alpha1
kind: RemediationPolicy
metadata:
  name: host-maintenance
spec:
  nodeSelector: {}                # every node
  conditions:
  - type: HostEventRebootAfter48  # the cloud will reboot the node within 48 hours
    status: "True"
  cordon: true
  drain:
    enabled: true
    timeout: 5m
  uncordonOnRecovery: true
  maxConcurrent: 1                # one node at a time
  maxUnhealthy: 50%               # more triggered nodes than that: act on none
EOF

	say "Deploying a sample app: Deployment web (10 replicas) and a PodDisruptionBudget (maxUnavailable 1)"
	kubectl apply -f - <<'EOF' | sed 's/^/    /'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 10
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector:
          matchLabels: {app: web}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: default
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: web}
EOF

	say "Starting bin/nodewarden controller and one bin/nodewarden-agent per node"
	start controller "$BIN/nodewarden" controller --kubeconfig "$STATE/kubeconfig" --namespace "$SYSTEM_NS" \
		--leader-elect --metrics-bind-address 0 --health-probe-bind-address 0
	echo "    controller  pid $(<"$STATE/run/controller.pid")  log $STATE/logs/controller.log"
	for ((i = 1; i <= NODES; i++)); do
		local node=node-$i
		start_agent "$node"
		if ((REPAIR)); then
			echo "    agent $node pid $(<"$STATE/run/agent-$node.pid")  follows $STATE/nodes/$node/{host_event.log,kmsg}"
		else
			echo "    agent $node pid $(<"$STATE/run/agent-$node.pid")  follows $STATE/nodes/$node/host_event.log"
		fi
	done

	say "Waiting for the agents, the controller and the app"
	if ! "$STATE/bin/story" -kubeconfig "$STATE/kubeconfig" -node "$STORY_NODE" \
		-host-event-log "$STATE/nodes/$STORY_NODE/host_event.log" -policy host-maintenance -app web -timeout 150s; then
		die "the story did not finish"
	fi

	say "kubectl describe node $STORY_NODE (conditions and events)"
	kubectl describe node "$STORY_NODE" | awk '
		/^[A-Z][A-Za-z ]*:/ { show = ($0 ~ /^(Conditions|Events):/) }
		/^(Taints|Unschedulable):/ { print "    " $0; next }
		show { print "    " $0 }'

	if ((REPAIR)); then
		repair_act
	fi

	say "kubectl get remediationpolicies"
	kubectl get remediationpolicies | sed 's/^/    /'

	say "kubectl nodewarden status (the plugin, bin/kubectl-nodewarden)"
	kubectl_plugin status | sed 's/^/    /'

	say "kubectl nodewarden history"
	kubectl_plugin history | sed 's/^/    /'

	local action things=Three more=""
	action=$(date -u -d '+47 hours' +%Y-%m-%dT%H:%M:%SZ)
	if ((REPAIR)); then
		things=Four
		more=$(
			cat <<EOF


    # 4. A hung task on node-3: drained, but not deleted within the hour (maxRepairsPerHour 1: node-5's DeleteNode counts)
    echo "3,1,\$(awk '{printf "%d", \$1*1000000}' /proc/uptime),-;INFO: task docker:2740 blocked for more than 120 seconds." >> $STATE/nodes/node-3/kmsg
    kubectl get remediationpolicy node-repair -o jsonpath='{.status.recentRepairs}{"\\n"}'
EOF
		)
	fi
	cat <<EOF

==> Done in $((SECONDS - t0))s. The cluster, the controller and the agents keep running.

    export KUBECONFIG=$STATE/kubeconfig
    export PATH=$BIN:\$PATH

  $things things to try:

    # 1. A maintenance notice for node-4: watch nodewarden cordon and drain it (^C stops watching)
    echo "\$(date '+%F %T') - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is $action" >> $STATE/nodes/node-4/host_event.log
    kubectl get nodes -w -o custom-columns='NODE:.metadata.name,UNSCHEDULABLE:.spec.unschedulable,NODEWARDEN:.metadata.annotations.nodewarden\.io/state'

    # 2. The maintenance is done: node-4 comes back
    echo "\$(date '+%F %T') - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Executed,action ISO 8601 time is $action" >> $STATE/nodes/node-4/host_event.log

    # 3. What the agents and the controller reported, and why nodewarden does what it does
    kubectl get events --field-selector involvedObject.kind=Node --sort-by=.metadata.creationTimestamp
    kubectl nodewarden status; kubectl nodewarden explain node-4; kubectl nodewarden history node-4$more

  make demo-down stops everything. Logs: $STATE/logs/
EOF
}

case "${1:-up}" in
up) up ;;
down) down ;;
agent-stop | agent-start)
	[[ $# == 2 ]] || die "usage: $0 $1 NODE"
	"${1/-/_}" "$2"
	;;
*) die "usage: $0 [up|down]" ;;
esac
