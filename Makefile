# quantscope — build, test and run. `make run` and `make test` are all a new machine needs.
GO      ?= go
BIN     := bin/quantscope
PKGS    := ./...
FUZZTIME ?= 10s
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin

.PHONY: all setup setup-cuda build run test vet fuzz proto bench clean tools

all: build

## setup: install the pinned ONNX Runtime CPU libraries into .ort/ (verified by SHA-256)
setup:
	@bash scripts/setup-ort.sh cpu

## setup-cuda: add the CUDA 13 plugin execution provider under .ort/cuda/
setup-cuda: setup
	@bash scripts/setup-ort.sh cuda

## build: compile bin/quantscope
build:
	$(GO) build -o $(BIN) ./cmd/quantscope

## run: set up, build, start quantscope
run: setup build
	./$(BIN) $(ARGS)

## tools: Debian packages the tests use (installed only when missing)
tools:
	@bash scripts/ensure-tools.sh

## test: setup, vet, unit + integration tests, a short fuzz of the ONNX loader
test: setup tools
	$(GO) vet $(PKGS)
	QUANTSCOPE_REQUIRE_ORT=1 $(GO) test -count=1 $(PKGS)
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) ./models/onnx

## fuzz: fuzz the ONNX loader for longer (FUZZTIME=5m make fuzz)
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) ./models/onnx

## bench: Go benchmarks (model builds, harness overhead)
bench: setup
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## proto: regenerate models/onnx/onnxpb from onnx.proto (needs protoc; installs protoc-gen-go)
proto:
	@command -v protoc >/dev/null || bash scripts/ensure-tools.sh protobuf-compiler
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	cd models/onnx/onnxpb && PATH="$(GOBIN_DIR):$$PATH" protoc --go_out=. --go_opt=paths=source_relative onnx.proto

clean:
	rm -rf bin
