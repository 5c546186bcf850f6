# quantscope — build, test and run. `make run` and `make test` are all a new machine needs.
GO      ?= go
BIN     := bin/quantscope
PKGS    := ./...
FUZZTIME ?= 10s
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
# go-nvml's header marks many NVML calls deprecated; gcc would print a wall of
# warnings on every cgo build of it. Silence that one class, keep the rest.
CGO_CFLAGS ?= -O2 -g
export CGO_CFLAGS += -Wno-deprecated-declarations

.PHONY: all setup setup-cuda build run install test vet fuzz proto bench clean tools gpu-bundle

all: build

## setup: install the pinned ONNX Runtime CPU libraries into .ort/ (verified by SHA-256)
setup:
	@bash scripts/setup-ort.sh cpu

## setup-cuda: add the CUDA 13 plugin execution provider under .ort/cuda/ (and make sure
## the provider bridge libonnxruntime_providers_shared.so is beside libonnxruntime.so)
setup-cuda: setup
	@bash scripts/setup-ort.sh cuda

## build: compile bin/quantscope
build:
	$(GO) build -o $(BIN) ./cmd/quantscope

## run: set up, build, start quantscope. Where NVML sees an NVIDIA GPU and the CUDA plugin
## is missing, it is added first (make setup-cuda, ~230 MB; QUANTSCOPE_NO_CUDA_SETUP=1 skips)
run: setup build
	@if [ -z "$$QUANTSCOPE_NO_CUDA_SETUP" ] && ./$(BIN) doctor --json 2>/dev/null | grep -q '"needs_cuda_plugin": true'; then \
		echo "make run: an NVIDIA GPU is here but the CUDA plugin is not; adding it (make setup-cuda)"; \
		$(MAKE) --no-print-directory setup-cuda || \
			echo "make run: the CUDA plugin could not be added, so runs stay on the CPU; the one command that adds it: make setup-cuda"; \
	fi
	./$(BIN) $(ARGS)

## install: the binary into $(PREFIX)/bin and ONNX Runtime (with the CUDA plugin when set
## up) into the user data dir, where quantscope finds it from any directory
PREFIX  ?= $(HOME)/.local
ORT_DATA_DIR ?= $(or $(XDG_DATA_HOME),$(HOME)/.local/share)/quantscope/ort
install: setup build
	install -d "$(PREFIX)/bin" "$(ORT_DATA_DIR)"
	install -m 0755 $(BIN) "$(PREFIX)/bin/quantscope"
	install -m 0644 .ort/libonnxruntime.so .ort/libonnxruntime_providers_shared.so "$(ORT_DATA_DIR)/"
	@if [ -f .ort/cuda/libonnxruntime_providers_cuda.so ]; then \
		install -d "$(ORT_DATA_DIR)/cuda" && \
		install -m 0644 .ort/cuda/libonnxruntime_providers_cuda.so "$(ORT_DATA_DIR)/cuda/"; fi
	@echo "installed $(PREFIX)/bin/quantscope and ONNX Runtime in $(ORT_DATA_DIR)"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "add $(PREFIX)/bin to PATH to run quantscope from anywhere";; esac

## tools: Debian packages the tests use (installed only when missing)
tools:
	@bash scripts/ensure-tools.sh

# Every fuzz target, as package:Target: the parsers of untrusted input
# (model files, results files, specs, gates, shards, EXIF tags, predictions
# files) and the graph rewriter.
FUZZ_TARGETS = ./models/onnx:FuzzLoad ./profiler/study:FuzzDecodeResults ./profiler/study:FuzzParseShard \
	./models/quant:FuzzParseSpec ./profiler/report:FuzzParseGate \
	./models/fidelity:FuzzCompare ./models/optimize:FuzzApply \
	./profiler/ort:FuzzParseProfile ./profiler/bench:FuzzParseOpProfile \
	./profiler/hwbench:FuzzParseReferences \
	./profiler/telemetry:FuzzParseProcStat \
	./models/imageset:FuzzOrientation ./models/accuracy:FuzzReadPredictions

# Packages whose goroutines (worker processes, watchers, samplers, the study
# runner, parallel image decoding, the sensitivity pipeline) are also tested
# under the race detector.
RACE_PKGS = ./profiler/worker/... ./profiler/study/... \
	./models/imageset/... ./profiler/sensitivity/... ./profiler/evaluate/...

## test: setup, vet, unit + integration tests (the goroutine-heavy packages
## again under -race), a short fuzz of every target
test: setup tools
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	QUANTSCOPE_REQUIRE_ORT=1 $(GO) test -count=1 $(PKGS)
	QUANTSCOPE_REQUIRE_ORT=1 $(GO) test -race -count=1 $(RACE_PKGS)
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) ./models/onnx
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s FUZZ_TARGETS="$(filter-out ./models/onnx:FuzzLoad,$(FUZZ_TARGETS))"

## fuzz: every fuzz target for FUZZTIME each (FUZZTIME=5m make fuzz)
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) "$${t%%:*}"; \
	done

## bench: Go benchmarks (model builds, harness overhead)
bench: setup
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## proto: regenerate models/onnx/onnxpb from onnx.proto (needs protoc; installs protoc-gen-go)
proto:
	@command -v protoc >/dev/null || bash scripts/ensure-tools.sh protobuf-compiler
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	cd models/onnx/onnxpb && PATH="$(GOBIN_DIR):$$PATH" protoc --go_out=. --go_opt=paths=source_relative onnx.proto

## gpu-bundle: what a GPU host without Go or npm needs, under .gpu/bundle: the binary
## (-ldflags='-s -w'), ONNX Runtime with its provider bridge and the CUDA plugin, each as xz
## parts of at most 45 MiB with SHA-256s, and reassemble.sh (see README, "On a GPU host")
GPU_BUNDLE ?= .gpu/bundle
gpu-bundle: setup-cuda
	$(GO) build -ldflags='-s -w' -o .gpu/quantscope ./cmd/quantscope
	@bash scripts/gpu-bundle.sh $(GPU_BUNDLE) \
		bin/quantscope=.gpu/quantscope \
		.ort/libonnxruntime.so=.ort/libonnxruntime.so \
		.ort/libonnxruntime_providers_shared.so=.ort/libonnxruntime_providers_shared.so \
		.ort/cuda/libonnxruntime_providers_cuda.so=.ort/cuda/libonnxruntime_providers_cuda.so

clean:
	rm -rf bin
