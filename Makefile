# nodewarden — see README.md. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The image of `make image`, `make image-push IMAGE=...` (IMAGE is then required).
IMAGE     ?= ghcr.io/nodewarden/nodewarden:$(VERSION)
PLATFORMS ?= linux/amd64,linux/arm64
# Every build of the executables goes through hack/image, whose
# internal/ociimage holds the go build flags (-trimpath -buildvcs=false
# -ldflags "-s -w -X .../internal/version.Version=... -X ...Commit=...").
IMAGE_TOOL := go run ./hack/image -version '$(VERSION)' -commit '$(COMMIT)'
export GOTOOLCHAIN := local
export KUBEBUILDER_ASSETS := $(BIN)

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/nodewarden (every subcommand), bin/nodewarden-agent (the agent alone, for the DaemonSet) and bin/kubectl-nodewarden (the kubectl plugin).
	$(IMAGE_TOOL) -binaries $(BIN)

.PHONY: image
image: ## The container image, from source without Docker: OCI index (PLATFORMS) in bin/image (layout, archive, SBOMs); prints digests.
	$(IMAGE_TOOL) -platforms '$(PLATFORMS)' -out $(BIN)/image -name '$(IMAGE)'

.PHONY: image-push
image-push: ## make image, then push it: make image-push IMAGE=registry/repository:tag [INSECURE=1 for plain HTTP].
	@case "$(origin IMAGE)" in "command line"|environment) ;; *) echo "make image-push: say where, e.g. IMAGE=ghcr.io/you/nodewarden:dev" >&2; exit 1 ;; esac
	$(IMAGE_TOOL) -platforms '$(PLATFORMS)' -out $(BIN)/image -push '$(IMAGE)' $(if $(INSECURE),-insecure)

.PHONY: k8s-bins
k8s-bins: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy, kwok, helm, kustomize, controller-gen; copy Cluster API's CRDs (cached).
	hack/k8s-bins.sh

.PHONY: node-deps
node-deps: ## Install the Debian packages a real test node runs: containerd, runc, CNI plugins, iptables (pinned; needs root).
	hack/node-deps.sh

.PHONY: manifests
manifests: ## Generate the CRD and deepcopy code from api/.
	hack/k8s-bins.sh controller-gen
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd:allowDangerousTypes=false paths=./api/... output:crd:dir=config/crd/bases
	$(MAKE) chart-sync

.PHONY: vet
vet: ## go vet every package.
	go vet ./...

.PHONY: test
test: k8s-bins node-deps vet ## Vet, unit and integration tests against a real control plane and a real node (builds them on first use).
	hack/test.sh

.PHONY: test-unit
test-unit: ## Only the tests that need no control plane.
	go test -short ./...

.PHONY: test-e2e
test-e2e: k8s-bins node-deps ## End-to-end tests: the real agent and controller binaries as processes on local clusters.
	go test -count=1 -timeout 15m ./test/e2e/...

.PHONY: demo
demo: k8s-bins build ## The whole story on a local cluster with 5 nodes; leaves it running (make demo-down stops it).
	hack/demo.sh

.PHONY: demo-down
demo-down: ## Stop every process of `make demo` and remove its files.
	hack/demo.sh down

.PHONY: lint
lint: ## golangci-lint and actionlint (installed pinned into bin/).
	hack/k8s-bins.sh golangci-lint actionlint
	$(BIN)/golangci-lint run ./...
	$(BIN)/actionlint

.PHONY: run-local
run-local: k8s-bins node-deps build ## Start a local control plane with kwok nodes and, where the machine can run one (root), a real kubelet node; print its kubeconfig; ^C stops it.
	go run ./test/cluster/cmd/localcluster -nodes 3

.PHONY: clean
clean: ## Remove bin/ links (the build cache in ~/.cache/nodewarden stays).
	rm -rf $(BIN)

CHART := charts/nodewarden

.PHONY: chart-sync
chart-sync: ## Copy the CRD, admission policy, alerts and dashboard from config/ into the Helm chart (test/install checks they agree).
	rm -f $(CHART)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/crds/
	cp config/rbac/agent_admission_policy.yaml $(CHART)/files/agent-admission-policy.yaml
	cp config/prometheus/prometheusrule.yaml $(CHART)/files/prometheusrule.yaml
	cp config/grafana/nodewarden-dashboard.json $(CHART)/files/nodewarden-dashboard.json

.PHONY: helm-lint
helm-lint: ## helm lint --strict the chart (test/install runs it too).
	hack/k8s-bins.sh helm
	$(BIN)/helm lint --strict $(CHART)

.PHONY: render
render: ## Print both installs: kustomize build config/default, helm template charts/nodewarden.
	hack/k8s-bins.sh kustomize helm
	$(BIN)/kustomize build config/default
	$(BIN)/helm template nodewarden $(CHART) --namespace nodewarden-system --include-crds --kube-version v1.37.2
