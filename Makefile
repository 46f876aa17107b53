# kasse: see README.md. Every target works on a fresh clone with Go and (for tests) redis-server installed.
GO      ?= go
PLUGINS := vipps-ecom vipps-epayment
WASMDIR := plugin/build

# Demo credentials of the local Vipps simulator's tenant (not secrets: they only open the simulator).
export KASSE_DEMO_CLIENT_SECRET ?= demo-client-secret
export KASSE_DEMO_SUBSCRIPTION_KEY ?= demo-subscription-key
export KASSE_DEMO_API_KEY ?= demo-api-key

.PHONY: all build plugins run test bench fmt vet clean

all: build

plugins: $(WASMDIR)/vipps-ecom.wasm $(WASMDIR)/vipps-epayment.wasm

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

# test: the whole suite (real redis-server, real wasm modules, real HTTP on loopback).
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# bench: plugin call (wasm vs native) and POST /v1/checkouts throughput, printed as a table.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2000x -count 1 ./plugin/vippsecom/ ./host/ 2>&1 | tee bin/bench.txt | $(GO) run ./host/internal/benchtable

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin $(WASMDIR)
