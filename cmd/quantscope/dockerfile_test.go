package main

import (
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/deploy/kube"
	"github.com/quantscope/quantscope/profiler/ort"
)

// The repository's Dockerfile cannot be built here (no Docker daemon, no
// registry for its base images); this checks what the rest of quantscope
// relies on in it: a CUDA 13 + cuDNN runtime base, doctor as the health
// check, the UID the generated Job runs as, ONNX Runtime where
// QUANTSCOPE_ORT_LIB points and the CUDA plugin in cuda/ beside it.
func TestDockerfileAgreesWithTheJob(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if !regexp.MustCompile(`(?m)^ARG CUDA_IMAGE=nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+$`).MatchString(df) || !strings.Contains(df, "FROM ${CUDA_IMAGE}") {
		t.Error("the runtime stage is not NVIDIA's CUDA 13 cuDNN runtime image")
	}
	if !regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["quantscope", "doctor"\]$`).MatchString(df) {
		t.Error("no HEALTHCHECK running quantscope doctor")
	}
	m := regexp.MustCompile(`useradd --uid (\d+)`).FindStringSubmatch(df)
	if m == nil || m[1] != strconv.Itoa(kube.RunAsUser) || !strings.Contains(df, "USER "+m[1]+":"+m[1]) {
		t.Errorf("the image's user %v is not the Job's UID %d", m, kube.RunAsUser)
	}
	lib := regexp.MustCompile(`QUANTSCOPE_ORT_LIB=(\S+)`).FindStringSubmatch(df)
	if lib == nil {
		t.Fatal("QUANTSCOPE_ORT_LIB not set")
	}
	dir := path.Dir(lib[1])
	for _, want := range []string{" " + dir + "/\n", " " + dir + "/cuda/\n"} {
		if !strings.Contains(df, want) {
			t.Errorf("nothing is copied into %s", strings.TrimSpace(want))
		}
	}
	if !strings.Contains(df, "/src/.ort/cuda/"+ort.CUDAPluginFile+" "+dir+"/cuda/") {
		t.Errorf("the CUDA plugin is not copied to %s/cuda/ beside the library", dir)
	}
	if !strings.Contains(df, "QUANTSCOPE_CACHE_DIR="+kube.CacheDir) {
		t.Errorf("the image's cache is not the Job's %s", kube.CacheDir)
	}
}
