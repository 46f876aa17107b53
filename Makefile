# kasse: see README.md. Every target works on a fresh clone with Go and (for tests) redis-server installed.
GO      ?= go
PLUGINS := vipps-ecom vipps-epayment
WASMDIR := plugin/build

# Demo credentials of the local Vipps simulator's tenant (not secrets: they only open the simulator).
export KASSE_DEMO_CLIENT_SECRET ?= demo-client-secret
export KASSE_DEMO_SUBSCRIPTION_KEY ?= demo-subscription-key
export KASSE_DEMO_API_KEY ?= demo-api-key
# Demo values of the admin API's token and the URL secret of `make run` (local only; set real ones in production).
export KASSE_DEMO_ADMIN_TOKEN ?= demo-admin-token-not-secret
export KASSE_DEMO_URL_SECRET ?= demo-url-secret-for-local-runs-only

.PHONY: all build plugins run test test-race chaos bench fmt vet clean

all: build

# plugins: each module with its bundle (see host/upgrade): <name>.manifest.json (name, version, ABI version,
# sha256, ops), <name>.golden.json (the plugin's golden vectors, which the host runs before the version
# serves) and <name>.wasm.sig, signed with a development key generated here on first use
# (plugin/build/dev.key, never committed; its public key is plugin/build/dev.pub). A host trusts it with
# plugins.trustedKeys, or loads unsigned modules with plugins.devMode.
KASSE_PLUGIN = $(GO) run ./host/cmd/kasse plugin
ECOM_VERSION = $(shell sed -n 's/^const Version = "\(.*\)"/\1/p' plugin/vippsecom/ecom/doc.go)
EPAYMENT_VERSION = $(shell sed -n 's/^const Version = "\(.*\)"/\1/p' plugin/vippsepayment/epayment/doc.go)

plugins: $(WASMDIR)/vipps-ecom.wasm $(WASMDIR)/vipps-epayment.wasm
	@test -f $(WASMDIR)/dev.key || $(KASSE_PLUGIN) keygen -out $(WASMDIR)/dev
	$(KASSE_PLUGIN) build -name vipps-ecom -version $(ECOM_VERSION) -wasm $(WASMDIR)/vipps-ecom.wasm -golden plugin/vippsecom/testdata/golden -out $(WASMDIR)
	$(KASSE_PLUGIN) sign -key $(WASMDIR)/dev.key $(WASMDIR)/vipps-ecom
	$(KASSE_PLUGIN) build -name vipps-epayment -version $(EPAYMENT_VERSION) -wasm $(WASMDIR)/vipps-epayment.wasm -golden plugin/vippsepayment/testdata/golden -out $(WASMDIR)
	$(KASSE_PLUGIN) sign -key $(WASMDIR)/dev.key $(WASMDIR)/vipps-epayment

$(WASMDIR)/vipps-ecom.wasm: $(shell find plugin -name '*.go' -not -path '*/testdata/*')
	@mkdir -p $(WASMDIR)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags='-s -w' -o $@ ./plugin/vippsecom

$(WASMDIR)/vipps-epayment.wasm: $(shell find plugin -name '*.go' -not -path '*/testdata/*')
	@mkdir -p $(WASMDIR)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags='-s -w' -o $@ ./plugin/vippsepayment

build: plugins
	@mkdir -p bin
	$(GO) build -o bin/kasse ./host/cmd/kasse
	$(GO) build -o bin/vippssim ./examples/vippssim/cmd/vippssim
	$(GO) build -o bin/demoshop ./examples/demoshop/cmd/demoshop

# run: the host on :8080 (in-process store, built plugin), the Vipps simulator on :8090, the demo shop on :8081.
run: build
	@./examples/dev/run.sh

# test: the whole suite (real redis-server, real wasm modules, real HTTP on loopback). It includes the
# chaos suite's short form (host/internal/chaos, about 2-4 minutes: each fault kind once).
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# test-race: the whole suite under the race detector (CI runs it after test).
test-race:
	$(GO) test -race -count=1 -timeout 30m ./...

# chaos: the chaos suite run long: 3 kasse processes on a 6-node Redis Cluster, the Vipps simulator, fake
# platforms, mixed load and faults on a schedule for DURATION, then the invariant table
# (see host/internal/chaos). `make chaos DURATION=10m`.
DURATION ?= 10m
CHAOS_TIMEOUT ?= 60m
chaos:
	$(GO) test -count=1 -v -run '^TestChaos$$' -timeout $(CHAOS_TIMEOUT) ./host/internal/chaos/ -chaos.duration=$(DURATION)

# bench: plugin call (wasm vs native), POST /v1/checkouts throughput, plugin swaps under load, and the load
# benchmark (each hot path for LOAD_DURATION at 32 in flight, as a share of a bare gin handler), as tables.
LOAD_DURATION ?= 3s
bench:
	@mkdir -p bin
	{ $(GO) test -run '^$$' -bench 'BuildInitiate|CreateCheckout|SwapUnderLoad|LiveCallsDuringGate' -benchtime 2000x -count 1 \
		./plugin/vippsecom/ ./host/ ./host/upgrade/; \
	  $(GO) test -run '^$$' -bench '^BenchmarkLoad$$' -benchtime 1x -count 1 ./host/ -load.duration=$(LOAD_DURATION); } \
		2>&1 | tee bin/bench.txt | $(GO) run ./host/internal/benchtable
	$(GO) test -run '^$$' -bench 'PluginBoundary|PluginPool|InstanceMemory|StartWarmCache|StartToReady|StartSteps|OutputCheck' -benchtime 2000x -count 1 -timeout 60m ./host/checkout/ ./host/plugins/ ./host/upgrade/ ./host/command/ 2>&1 | tee bin/bench-plugins.txt | $(GO) run ./host/internal/benchtable

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin $(WASMDIR)
