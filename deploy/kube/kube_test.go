package kube

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"

	"github.com/quantscope/quantscope/deploy"
	"github.com/quantscope/quantscope/profiler/study"
)

func testStudy() deploy.Study {
	return deploy.Study{Name: "bench-h100", Models: []string{"deit-tiny", "vit-base-16", "resnet-50"}, Precisions: []string{"fp16", "int8"},
		EPs: []string{"cuda"}, Batches: []int{1, 32}, Shards: 3, Extra: []string{"--duration", "20s", "--repeat", "3"}}
}

func testOptions() Options {
	return Options{Image: "registry.example.com/quantscope:1.0", GPUs: 1, Retries: 2,
		NodeSelector: map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, Memory: "32Gi", CPU: "8"}
}

// strictDecoder decodes YAML through a scheme holding the batch/v1 and
// core/v1 types, failing on unknown or duplicated fields as the API server
// does under strict field validation.
func strictDecoder(t *testing.T) *json.Serializer {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := batchv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
}

// documents splits a YAML stream and drops the comment-only header.
func documents(b []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if strings.HasPrefix(strings.TrimSpace(string(d)), "#") && !bytes.Contains(d, []byte("kind:")) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func render(t *testing.T, s deploy.Study, o Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, s, o, []string{"shard 0: vit-base-16 (90% of the expected cost)"}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func argAfter(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// The generated YAML decodes strictly into a batch/v1 Job (and a v1
// PersistentVolumeClaim) through the Kubernetes scheme, and its index
// wiring holds: Indexed completions equal to --shards, JOB_COMPLETION_INDEX
// from the pod's completion-index annotation, --shard auto, an output
// named by that index on the results claim, one GPU per pod.
func TestJobDecodesStrictlyWithIndexWiring(t *testing.T) {
	s, o := testStudy(), testOptions()
	out := render(t, s, o)
	dec := strictDecoder(t)
	docs := documents(out)
	if len(docs) != 2 {
		t.Fatalf("%d documents, want the claim and the Job:\n%s", len(docs), out)
	}
	obj, gvk, err := dec.Decode(docs[0], nil, nil)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || gvk.Kind != "PersistentVolumeClaim" || gvk.Version != "v1" {
		t.Fatalf("first document is %v (%T)", gvk, obj)
	}
	obj, gvk, err = dec.Decode(docs[1], nil, nil)
	if err != nil {
		t.Fatalf("job: %v", err)
	}
	job, ok := obj.(*batchv1.Job)
	if !ok || gvk.Group != "batch" || gvk.Version != "v1" || gvk.Kind != "Job" {
		t.Fatalf("second document is %v (%T)", gvk, obj)
	}

	spec := job.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode %v, want Indexed", spec.CompletionMode)
	}
	if spec.Completions == nil || int(*spec.Completions) != s.Shards || spec.Parallelism == nil || int(*spec.Parallelism) != s.Shards {
		t.Errorf("completions %v, parallelism %v, want %d each", spec.Completions, spec.Parallelism, s.Shards)
	}
	if spec.BackoffLimitPerIndex == nil || *spec.BackoffLimitPerIndex != 2 || spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("backoffLimitPerIndex %v, restartPolicy %q", spec.BackoffLimitPerIndex, spec.Template.Spec.RestartPolicy)
	}
	if len(spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Template.Spec.Containers))
	}
	c := spec.Template.Spec.Containers[0]
	var index *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == study.EnvJobCompletionIndex {
			index = &c.Env[i]
		}
	}
	if index == nil || index.ValueFrom == nil || index.ValueFrom.FieldRef == nil ||
		index.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("JOB_COMPLETION_INDEX env %+v, want it from the completion-index annotation", index)
	}
	if v, _ := argAfter(c.Args, "--shard"); v != "auto" {
		t.Errorf("--shard %q, want auto", v)
	}
	if v, _ := argAfter(c.Args, "--shards"); v != strconv.Itoa(int(*spec.Completions)) {
		t.Errorf("--shards %q disagrees with completions %d", v, *spec.Completions)
	}
	if v, _ := argAfter(c.Args, "--host-group"); v != s.Name {
		t.Errorf("--host-group %q, want the Job's name", v)
	}
	outPath, _ := argAfter(c.Args, "--out")
	if outPath != "/results/bench-h100/results-$(JOB_COMPLETION_INDEX).jsonl" {
		t.Errorf("--out %q", outPath)
	}
	if !slices.Contains(c.Args, "--resume") {
		t.Error("no --resume: a replaced pod would start its shard again")
	}
	if got := c.Args[len(c.Args)-4:]; !slices.Equal(got, s.Extra) {
		t.Errorf("extra bench flags %v, want %v last", got, s.Extra)
	}
	var results *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if strings.HasPrefix(outPath, c.VolumeMounts[i].MountPath+"/") {
			results = &c.VolumeMounts[i]
		}
	}
	if results == nil {
		t.Fatalf("the output %s is on no mounted volume (%+v)", outPath, c.VolumeMounts)
	}
	var claim string
	for _, v := range spec.Template.Spec.Volumes {
		if v.Name == results.Name && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != pvc.Name || claim != "bench-h100-results" || !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("results volume claims %q, the manifest's claim is %q (%v)", claim, pvc.Name, pvc.Spec.AccessModes)
	}
	if q := c.Resources.Limits[GPUResource]; q.Value() != 1 {
		t.Errorf("nvidia.com/gpu limit %v, want 1", q.String())
	}
	if q := c.Resources.Limits[corev1.ResourceMemory]; q.String() != "32Gi" {
		t.Errorf("memory limit %v", q.String())
	}
	if spec.Template.Spec.NodeSelector["nvidia.com/gpu.product"] != "NVIDIA-H100-80GB-HBM3" {
		t.Errorf("node selector %v", spec.Template.Spec.NodeSelector)
	}
	if len(spec.Template.Spec.Tolerations) != 1 || spec.Template.Spec.Tolerations[0].Key != "nvidia.com/gpu" {
		t.Errorf("tolerations %+v", spec.Template.Spec.Tolerations)
	}
	if len(c.Command) < 4 || c.Command[0] != "/bin/sh" || c.Command[2] != deploy.RunScript {
		t.Errorf("command %q", c.Command)
	}
	for _, want := range []string{"kubectl apply", "kubectl cp", "quantscope merge bench-h100.jsonl bench-h100/results-*.jsonl", "claimName\":\"bench-h100-results"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the comments do not say %q", want)
		}
	}
}

// The strict decoder really is strict: a misspelt field is refused.
func TestStrictDecoderRefusesUnknownFields(t *testing.T) {
	docs := documents(render(t, testStudy(), testOptions()))
	bad := bytes.Replace(docs[1], []byte("completionMode:"), []byte("completionMod:"), 1)
	if _, _, err := strictDecoder(t).Decode(bad, nil, nil); err == nil || !strings.Contains(err.Error(), "completionMod") {
		t.Errorf("misspelt field: %v", err)
	}
}

// An existing claim is used as given (no claim in the output); CPU-only
// Jobs ask for no GPU and tolerate no GPU taint; --parallelism bounds the
// pods at once.
func TestJobWithExistingClaimOnCPU(t *testing.T) {
	o := Options{Image: "q:1", ResultsPVC: "shared-results", Parallelism: 2, ModelsPVC: "my-models", Namespace: "ml"}
	s := testStudy()
	s.EPs = []string{"cpu"}
	docs := documents(render(t, s, o))
	if len(docs) != 1 {
		t.Fatalf("%d documents, want only the Job", len(docs))
	}
	obj, _, err := strictDecoder(t).Decode(docs[0], nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	job := obj.(*batchv1.Job)
	ps := job.Spec.Template.Spec
	if _, ok := ps.Containers[0].Resources.Limits[GPUResource]; ok || len(ps.Tolerations) != 0 {
		t.Errorf("CPU Job asks for GPUs: %+v, %+v", ps.Containers[0].Resources, ps.Tolerations)
	}
	if *job.Spec.Parallelism != 2 || *job.Spec.Completions != 3 || job.Namespace != "ml" {
		t.Errorf("parallelism %d, completions %d, namespace %q", *job.Spec.Parallelism, *job.Spec.Completions, job.Namespace)
	}
	claims := map[string]bool{}
	for _, v := range ps.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.PersistentVolumeClaim.ClaimName] = v.PersistentVolumeClaim.ReadOnly
		}
	}
	if ro, ok := claims["shared-results"]; !ok || ro {
		t.Errorf("results claim %v", claims)
	}
	if ro, ok := claims["my-models"]; !ok || !ro {
		t.Errorf("models claim not mounted read-only: %v", claims)
	}
}

func TestManifestsRefuseBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*deploy.Study, *Options)
		want string
	}{
		{"no image", func(s *deploy.Study, o *Options) { o.Image = "" }, "--image"},
		{"upper-case name", func(s *deploy.Study, o *Options) { s.Name = "Bench" }, "--name \"Bench\""},
		{"long name", func(s *deploy.Study, o *Options) { s.Name = strings.Repeat("a", 60) }, "at most 55"},
		{"no models", func(s *deploy.Study, o *Options) { s.Models = nil }, "--models"},
		{"no shards", func(s *deploy.Study, o *Options) { s.Shards = 0 }, "--shards 0"},
		{"reserved flag", func(s *deploy.Study, o *Options) { s.Extra = []string{"--out=x.jsonl"} }, "--out is set by the generated job"},
		{"bad selector", func(s *deploy.Study, o *Options) { o.NodeSelector = map[string]string{"gpu": "H100 80GB"} }, "--node-selector gpu="},
		{"bad memory", func(s *deploy.Study, o *Options) { o.Memory = "lots" }, "--memory \"lots\""},
		{"negative gpu", func(s *deploy.Study, o *Options) { o.GPUs = -1 }, "--gpu -1"},
		{"bad claim", func(s *deploy.Study, o *Options) { o.ResultsPVC = "my_claim" }, "--results-pvc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, o := testStudy(), testOptions()
			tc.edit(&s, &o)
			var b bytes.Buffer
			err := Render(&b, s, o, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if b.Len() != 0 {
				t.Error("output written despite the error")
			}
		})
	}
}

// The container's command, run as the kubelet would (arguments with
// $(JOB_COMPLETION_INDEX) expanded) against a stand-in quantscope on the
// PATH: the arguments arrive intact, exits 3 and 4 (results recorded)
// complete the pod, anything else fails it.
func TestContainerCommandExitCodes(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	job, _, err := Manifests(testStudy(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	c := job.Spec.Template.Spec.Containers[0]
	dir := t.TempDir()
	fake := "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$ARGS_FILE\"\nexit \"$FAKE_EXIT\"\n"
	if err := os.WriteFile(filepath.Join(dir, deploy.Binary), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, a := range c.Args {
		args = append(args, strings.ReplaceAll(a, "$(JOB_COMPLETION_INDEX)", "2"))
	}
	for _, tc := range []struct{ exit, want int }{{0, 0}, {3, 0}, {4, 0}, {1, 1}, {2, 2}, {130, 130}} {
		argsFile := filepath.Join(dir, "args")
		cmd := exec.Command(c.Command[0], append(c.Command[1:], args...)...)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "ARGS_FILE="+argsFile, "FAKE_EXIT="+strconv.Itoa(tc.exit))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		got := 0
		if ee, ok := err.(*exec.ExitError); ok {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("quantscope exit %d: pod exits %d, want %d (%s)", tc.exit, got, tc.want, stderr.String())
		}
		b, _ := os.ReadFile(argsFile)
		if received := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); !slices.Equal(received, args) {
			t.Fatalf("quantscope received %q, want %q", received, args)
		}
	}
}
