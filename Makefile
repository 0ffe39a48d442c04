# quictun — run `make help` for the targets.

# Go: from PATH, else where the official tarball goes. sudo's secure_path
# drops /usr/local/go/bin from PATH, so `sudo make demo` finds it here.
# GO=/path/to/go overrides; it is exported, so that the scripts and the
# tests build with the same go.
ifeq ($(origin GO),undefined)
GO := $(shell command -v go 2>/dev/null || ls /usr/local/go/bin/go 2>/dev/null)
endif
export GO
# godir is GO's directory (with its gofmt), if GO names one.
godir    = $(if $(findstring /,$(GO)),$(dir $(GO)))
GOFMT    = $(godir)gofmt
# need_go stops a target that runs go with one line saying what to do.
need_go  = $(if $(GO),,$(error go not found: not on PATH, not in /usr/local/go/bin; install Go (https://go.dev/doc/install) or give make GO=/path/to/go))
BIN     ?= bin/quictun
# DEPS=install (the default) lets make demo and make test install missing
# programs with apt-get when run as root; DEPS=check only names them.
DEPS    ?= install
GOFILES  = $(shell find . -name '*.go' -not -path './.git/*')

.DEFAULT_GOAL := help

.PHONY: help build test vet fmt-check demo deps clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/quictun
	$(need_go)$(GO) build -o $(BIN) ./cmd/quictun

vet: ## run go vet on every package
	$(need_go)$(GO) vet ./...

fmt-check: ## fail if gofmt would change any file
	@$(need_go)out=$$($(GOFMT) -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

deps: ## install the programs the tests run (as root with apt-get, when missing; DEPS=check only names them)
	@testdata/deps.sh $(DEPS) test

test: deps vet ## go vet, then every test; the end-to-end tests need root (they skip otherwise, fail under QUICTUN_E2E=1)
	$(need_go)$(GO) test -count=1 -timeout 20m ./... ./testdata/netns/nettool/
	$(GO) test -race -count=1 -run 'Status|Sessions|DropReason' ./quictun/

demo: ## run the network-namespace demo: server + 2 clients, ping, 20 MB transfer (needs root)
	@if [ "$$(id -u)" -ne 0 ]; then echo "make demo needs root (network namespaces, TUN devices): sudo make demo"; exit 1; fi
	@testdata/deps.sh $(DEPS) demo
	$(MAKE) --no-print-directory build
	QUICTUN=$(CURDIR)/$(BIN) testdata/netns/demo.sh

clean: ## remove bin/ and the test cache
	rm -rf bin
	$(need_go)$(GO) clean -testcache

.PHONY: recovery
recovery: build ## measure roaming recovery times (needs root)
	@if [ "$$(id -u)" -ne 0 ]; then echo "make recovery needs root (network namespaces, TUN devices): sudo make recovery"; exit 1; fi
	QUICTUN=$(CURDIR)/$(BIN) testdata/netns/recovery.sh -o bin/recovery.json

.PHONY: bench
bench: ## throughput, packet rate, RTT, CPU/GB: raw veth vs quictun TUN/TAP vs wireguard-go (needs root, ~6 min; bin/bench.json, see docs/PERFORMANCE.md)
	@if [ "$$(id -u)" -ne 0 ]; then echo "make bench needs root (network namespaces, TUN devices): sudo make bench"; exit 1; fi
	PATH="$(godir)$${PATH:+:$$PATH}" testdata/netns/bench.sh
