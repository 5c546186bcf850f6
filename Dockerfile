# syntax=docker/dockerfile:1
#
# quantscope for GPU nodes: the binary, ONNX Runtime 1.29 (the pinned CPU build
# from scripts/setup-ort.sh) and its CUDA 13 plugin execution provider, on
# NVIDIA's CUDA 13 runtime image with cuDNN 9 (which hold the libcudart.so.13,
# cuBLAS, cuRAND and libcudnn.so.9 the plugin loads). The image `quantscope deploy
# k8s` runs; `quantscope doctor` is its health check.
#
#   docker build -t quantscope .
#   docker run --rm --gpus all quantscope                      # doctor
#   docker run --rm --gpus all -v "$PWD/results:/results" quantscope \
#       bench --models deit-tiny --ep cuda --out /results/results.jsonl
#
# The build stage fetches the ONNX Runtime packages with npm and checks their
# SHA-256 sums (scripts/setup-ort.sh), so it needs the npm registry and the Go
# module proxy; the runtime stage needs neither.

ARG GO_IMAGE=golang:1.26-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM ${GO_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN bash scripts/setup-ort.sh cpu && bash scripts/setup-ort.sh cuda
# cgo: onnxruntime_go loads the library with dlopen. Built on Debian 12's
# glibc 2.36, it runs on Ubuntu 24.04's 2.39.
RUN CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o /out/quantscope ./cmd/quantscope

FROM ${CUDA_IMAGE}
LABEL org.opencontainers.image.title="quantscope" \
      org.opencontainers.image.description="Profile quantized vision models on ONNX Runtime (CPU and CUDA 13)"
# The pods of `quantscope deploy k8s` run as UID 1000 (deploy/kube RunAsUser);
# Ubuntu's own image gives that UID to the user "ubuntu".
RUN (userdel --remove ubuntu 2>/dev/null || true) \
 && useradd --uid 1000 --user-group --create-home --shell /bin/bash quantscope \
 && mkdir -p /cache /results \
 && chown quantscope:quantscope /cache /results
# The CUDA plugin is found in cuda/ beside the ONNX Runtime library.
COPY --from=build /src/.ort/libonnxruntime.so /src/.ort/libonnxruntime_providers_shared.so /opt/quantscope/.ort/
COPY --from=build /src/.ort/cuda/libonnxruntime_providers_cuda.so /opt/quantscope/.ort/cuda/
COPY --from=build /out/quantscope /opt/quantscope/bin/quantscope
ENV PATH=/opt/quantscope/bin:$PATH \
    QUANTSCOPE_ORT_LIB=/opt/quantscope/.ort/libonnxruntime.so \
    QUANTSCOPE_CACHE_DIR=/cache
USER 1000:1000
WORKDIR /home/quantscope
# doctor exits non-zero when ONNX Runtime cannot load; it also reports the
# GPUs, the driver and whether the CUDA plugin found every library it needs.
HEALTHCHECK --interval=5m --timeout=60s --start-period=20s --retries=2 CMD ["quantscope", "doctor"]
ENTRYPOINT ["quantscope"]
CMD ["doctor"]
