# nodewarden — see README.md. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X github.com/nodewarden/nodewarden/internal/version.Version=$(VERSION) \
            -X github.com/nodewarden/nodewarden/internal/version.Commit=$(COMMIT)
export GOTOOLCHAIN := local
export KUBEBUILDER_ASSETS := $(BIN)

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/nodewarden.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/nodewarden ./cmd/nodewarden

.PHONY: k8s-bins
k8s-bins: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm, kustomize, controller-gen (cached).
	hack/k8s-bins.sh

.PHONY: manifests
manifests: ## Generate the CRD and deepcopy code from api/.
	hack/k8s-bins.sh controller-gen
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd:allowDangerousTypes=false paths=./api/... output:crd:dir=config/crd/bases

.PHONY: vet
vet: ## go vet every package.
	go vet ./...

.PHONY: test
test: k8s-bins vet ## Vet, unit and integration tests against a real control plane (builds it on first use).
	hack/test.sh

.PHONY: test-unit
test-unit: ## Only the tests that need no control plane.
	go test -short ./...

.PHONY: lint
lint: ## golangci-lint (installed pinned into bin/).
	hack/k8s-bins.sh golangci-lint
	$(BIN)/golangci-lint run ./...

.PHONY: run-local
run-local: k8s-bins build ## Start a local control plane with kwok nodes and print its kubeconfig; ^C stops it.
	go run ./test/cluster/cmd/localcluster -nodes 3

.PHONY: clean
clean: ## Remove bin/ links (the build cache in ~/.cache/nodewarden stays).
	rm -rf $(BIN)
