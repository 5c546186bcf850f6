package slurm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/deploy"
)

func testStudy() deploy.Study {
	return deploy.Study{Name: "bench-a100", Models: []string{"deit-tiny", "/data/models/my model's.onnx"}, Precisions: []string{"fp16", "int4:block=64,asym"},
		EPs: []string{"cuda"}, Batches: []int{1, 8}, Shards: 4, Extra: []string{"--gate", "top1>=0.99,cos>=0.999"}}
}

func render(t *testing.T, s deploy.Study, o Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, s, o, []string{"shard 0: deit-tiny (12% of the expected cost)"}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The script passes `bash -n`, and its #SBATCH directives ask for the
// array, the GPUs and the rest before the first command (sbatch stops
// reading them there).
func TestScriptSyntaxAndDirectives(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	o := Options{GPUs: 2, Partition: "gpu-h100", Account: "ml", Time: "1-04:00:00", CPUsPerTask: 16, Mem: "64G", MaxParallel: 2, Image: "registry.example.com/quantscope:1.0"}
	script := render(t, testStudy(), o)
	path := filepath.Join(t.TempDir(), "study.sbatch")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s\n%s", err, out, script)
	}
	var directives []string
	for _, l := range strings.Split(script, "\n")[1:] {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
			break
		}
		if d, ok := strings.CutPrefix(l, "#SBATCH "); ok {
			directives = append(directives, d)
		}
	}
	for _, want := range []string{"--job-name=bench-a100", "--array=0-3%2", "--gres=gpu:2", "--partition=gpu-h100", "--account=ml",
		"--time=1-04:00:00", "--cpus-per-task=16", "--mem=64G", "--output=bench-a100-%A_%a.out", "--requeue"} {
		if !slices.Contains(directives, want) {
			t.Errorf("no #SBATCH %s before the first command; directives %q", want, directives)
		}
	}
	for _, want := range []string{"quantscope merge bench-a100.jsonl results/bench-a100/results-*.jsonl", "sbatch bench-a100.sbatch", "--container-image=registry.example.com/quantscope:1.0"} {
		if !strings.Contains(script, want) {
			t.Errorf("script does not contain %q", want)
		}
	}
}

// The script run as an array task, with stand-ins for srun and quantscope
// on the PATH: quantscope receives exactly the study's arguments (a path
// with a space and a quote included) and an output named by the task, the
// results directory exists, and exits 3 and 4 complete the task.
func TestScriptRunsTheShard(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	s := testStudy()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"srun":       "#!/bin/sh\nexec \"$@\"\n",
		"quantscope": "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$ARGS_FILE\"\nexit \"$FAKE_EXIT\"\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(dir, "study.sbatch")
	if err := os.WriteFile(script, []byte(render(t, s, Options{GPUs: 1})), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ exit, want int }{{0, 0}, {4, 0}, {3, 0}, {1, 1}, {137, 137}} {
		argsFile := filepath.Join(dir, "args")
		cmd := exec.Command(bash, script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "ARGS_FILE="+argsFile, "FAKE_EXIT="+strconv.Itoa(tc.exit),
			"SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_ARRAY_TASK_MIN=0")
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
			t.Errorf("quantscope exit %d: task exits %d, want %d (%s)", tc.exit, got, tc.want, stderr.String())
		}
		b, _ := os.ReadFile(argsFile)
		received := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		results := filepath.Join(dir, "results", "bench-a100")
		want := s.BenchArgs(filepath.Join(results, "results-2.jsonl"))
		if !slices.Equal(received, want) {
			t.Fatalf("quantscope received\n%q\nwant\n%q", received, want)
		}
		if st, err := os.Stat(results); err != nil || !st.IsDir() {
			t.Errorf("results directory %s not created: %v", results, err)
		}
	}
}

func TestRenderRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*deploy.Study, *Options)
		want string
	}{
		{"name with space", func(s *deploy.Study, o *Options) { s.Name = "my study" }, "--name"},
		{"bad time", func(s *deploy.Study, o *Options) { o.Time = "4 hours" }, "--time"},
		{"bad mem", func(s *deploy.Study, o *Options) { o.Mem = "lots" }, "--mem"},
		{"negative gpu", func(s *deploy.Study, o *Options) { o.GPUs = -2 }, "--gpu -2"},
		{"partition injection", func(s *deploy.Study, o *Options) { o.Partition = "gpu\n#SBATCH --x" }, "--partition"},
		{"no shards", func(s *deploy.Study, o *Options) { s.Shards = 0 }, "--shards"},
		{"multi-line dir", func(s *deploy.Study, o *Options) { o.ResultsDir = "a\nb" }, "one line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, o := testStudy(), Options{}
			tc.edit(&s, &o)
			var b bytes.Buffer
			if err := Render(&b, s, o, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
			if b.Len() != 0 {
				t.Error("output written despite the error")
			}
		})
	}
}

func TestQuote(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, s := range []string{"plain", "", "a b", "it's", `$HOME`, "top1>=0.99,cos>=0.999", "x;rm -rf /", "`id`", "tab\there"} {
		out, err := exec.Command(bash, "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("Quote(%q) = %s came back as %q (%v)", s, Quote(s), out, err)
		}
	}
}
