# quictun — run `make help` for the targets.

GO      ?= go
BIN     ?= bin/quictun
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

.PHONY: help build test vet fmt-check demo clean install uninstall

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/quictun
	$(GO_BUILD)

# install needs the binary, not a go command: `make build && sudo make
# install` works where sudo's PATH has no Go.
$(BIN): $(GOFILES) go.mod go.sum
	$(GO_BUILD)

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
