# quictun — run `make help` for the targets.

GO      ?= go
BIN     ?= bin/quictun
GOFILES  = $(shell find . -name '*.go' -not -path './.git/*')

.DEFAULT_GOAL := help

.PHONY: help build test vet fmt-check demo clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/quictun
	$(GO) build -o $(BIN) ./cmd/quictun

vet: ## run go vet on every package
	$(GO) vet ./...

fmt-check: ## fail if gofmt would change any file
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: vet ## go vet, then every test; the end-to-end tests need root (they skip otherwise, fail under QUICTUN_E2E=1)
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -race -count=1 -run 'Status|Sessions|DropReason' ./quictun/

demo: ## run the network-namespace demo: server + 2 clients, ping, 20 MB transfer (needs root)
	@if [ "$$(id -u)" -ne 0 ]; then echo "make demo needs root (network namespaces, TUN devices): sudo make demo"; exit 1; fi
	$(MAKE) --no-print-directory build
	QUICTUN=$(CURDIR)/$(BIN) testdata/netns/demo.sh

clean: ## remove bin/ and the test cache
	rm -rf bin
	$(GO) clean -testcache

.PHONY: recovery
recovery: build ## measure roaming recovery times (needs root)
	@if [ "$$(id -u)" -ne 0 ]; then echo "make recovery needs root (network namespaces, TUN devices): sudo make recovery"; exit 1; fi
	QUICTUN=$(CURDIR)/$(BIN) testdata/netns/recovery.sh -o bin/recovery.json

.PHONY: bench
bench: ## throughput, packet rate, RTT, CPU/GB: raw veth vs quictun TUN/TAP vs wireguard-go (needs root, ~6 min; bin/bench.json, see docs/PERFORMANCE.md)
	@if [ "$$(id -u)" -ne 0 ]; then echo "make bench needs root (network namespaces, TUN devices): sudo make bench"; exit 1; fi
	testdata/netns/bench.sh
