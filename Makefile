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

# make install: PREFIX=/usr/local by default; DESTDIR for packaging. The
# units go to $(PREFIX)/lib/systemd/system, which systemd reads for both
# /usr and /usr/local (/etc/systemd/system is the administrator's).
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
UNITS        = quictun-server.service quictun-client@.service
# Everything make install writes, and make uninstall removes.
INSTALLED    = $(BINDIR)/quictun $(addprefix $(UNITDIR)/,$(UNITS)) $(MANDIR)/man8/quictun.8 \
               $(BASHCOMPDIR)/quictun $(ZSHCOMPDIR)/_quictun

# The commit for `quictun version` where the go command records none: in
# a git worktree, or with GOFLAGS=-buildvcs=false. The build info wins
# where it has one. Empty outside a git checkout.
GIT_COMMIT   = $(shell git rev-parse HEAD 2>/dev/null)
VERSION_LDFLAGS = $(if $(GIT_COMMIT),-X main.ldCommit=$(GIT_COMMIT) \
	-X main.ldTime=$(shell TZ=UTC git log -1 --date=iso-strict-local --format=%cd 2>/dev/null) \
	-X main.ldModified=$(if $(shell git status --porcelain 2>/dev/null),true,false))
GO_BUILD     = $(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $(BIN) ./cmd/quictun

.DEFAULT_GOAL := help

.PHONY: help build test vet fmt-check demo deps clean install uninstall

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/quictun
	$(need_go)$(GO_BUILD)

# install needs the binary, not a go command: `make build && sudo make
# install` works where sudo's PATH has no Go.
$(BIN): $(GOFILES) go.mod go.sum
	$(need_go)$(GO_BUILD)

install: $(BIN) ## install quictun, its systemd units, man page and bash/zsh completions under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/quictun
	@# The units name the binary where it was installed.
	for u in $(UNITS); do \
		sed 's|/usr/local/bin/quictun|$(BINDIR)/quictun|g' contrib/systemd/$$u >$(BIN).unit && \
		install -m 0644 $(BIN).unit $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done; rm -f $(BIN).unit
	$(BIN) man >$(BIN).8 && install -m 0644 $(BIN).8 $(DESTDIR)$(MANDIR)/man8/quictun.8 && rm -f $(BIN).8
	$(BIN) completion bash >$(BIN).bash && install -m 0644 $(BIN).bash $(DESTDIR)$(BASHCOMPDIR)/quictun && rm -f $(BIN).bash
	$(BIN) completion zsh >$(BIN).zsh && install -m 0644 $(BIN).zsh $(DESTDIR)$(ZSHCOMPDIR)/_quictun && rm -f $(BIN).zsh
	@if [ -z "$(DESTDIR)" ]; then echo "installed; systemd: systemctl daemon-reload, then see docs/OPERATIONS.md (Running under systemd)"; fi

uninstall: ## remove what make install installed (same PREFIX and DESTDIR)
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

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
	$(if $(godir),PATH="$(godir):$$PATH") testdata/netns/bench.sh
