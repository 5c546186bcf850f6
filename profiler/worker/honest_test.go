package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// arenaModel writes x[1,1024] → Expand to [rows,1024] → ReduceSum over
// the rows → [1,1024]: the session needs one intermediate tensor of
// rows × 4 KiB, allocated from ONNX Runtime's arena while it runs, and
// nothing of that size at load.
func arenaModel(t *testing.T, dir string, rows int) string {
	t.Helper()
	b := onnx.NewBuilder("arena", 17)
	b.AddInput("x", onnx.Float, onnx.Dims(1, 1024))
	b.AddInitializerInt64("shape", []int64{2}, []int64{int64(rows), 1024})
	b.AddInitializerInt64("axes", []int64{1}, []int64{0})
	b.AddNode("Expand", []string{"x", "shape"}, []string{"big"})
	b.AddNode("ReduceSum", []string{"big", "axes"}, []string{"y"}, onnx.AttrInt("keepdims", 1))
	b.AddOutput("y", onnx.Float, onnx.Dims(1, 1024))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("arena-%d.onnx", rows))
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// runWorker runs the real worker (this test binary in serve mode) on spec.
func runWorker(t *testing.T, spec Spec) Result {
	t.Helper()
	exe, _ := os.Executable()
	out := Run(context.Background(), spec, Options{Exe: exe, Args: []string{"-test.run=^$"}, Env: []string{"QS_FAKE_WORKER=serve"}, Timeout: 2 * time.Minute})
	if out.Err != nil {
		t.Fatalf("worker failed: %v\n%s", out.Err, out.StderrTail)
	}
	var res Result
	if err := json.Unmarshal(out.Result, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPeakWorkingSetGrowsWithTheArena: a model whose run needs a 64 MiB
// intermediate tensor has a peak working set about 64 MiB above the same
// model with a 4 KiB one, though loading either leaves the same memory
// resident: the working set counts what the session allocates while it
// runs, which RSS after load (the old figure) never saw.
func TestPeakWorkingSetGrowsWithTheArena(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	const rows = 16384 // × 1024 floats = 64 MiB
	spec := Spec{Batch: 1, Threads: 1, MaxRuns: 5, MinWarmup: 2, MaxWarmup: 3}
	spec.ModelPath = arenaModel(t, dir, 1)
	small := runWorker(t, spec).Metrics.Memory
	spec.ModelPath = arenaModel(t, dir, rows)
	big := runWorker(t, spec).Metrics.Memory
	for _, m := range []struct {
		name string
		mem  any
		ws   int64
		src  string
	}{{"small", small, small.PeakWorkingSet, small.PeakSource}, {"big", big, big.PeakWorkingSet, big.PeakSource}} {
		if m.src != telemetry.PeakHighWater || m.ws <= 0 {
			t.Fatalf("%s: peak working set %d from %q: %+v", m.name, m.ws, m.src, m.mem)
		}
	}
	grew := big.PeakWorkingSet - small.PeakWorkingSet
	const arena = int64(rows) * 1024 * 4
	t.Logf("peak working set %.1f → %.1f MiB; resident after load %.1f → %.1f MiB", mib(small.PeakWorkingSet), mib(big.PeakWorkingSet), mib(small.ResidentAfterLoad), mib(big.ResidentAfterLoad))
	if grew < arena*9/10 || grew > arena*5/2 {
		t.Errorf("peak working set grew %.1f MiB (%.1f → %.1f), want about %d MiB", mib(grew), mib(small.PeakWorkingSet), mib(big.PeakWorkingSet), arena>>20)
	}
	if d := big.ResidentAfterLoad - small.ResidentAfterLoad; d > arena/4 {
		t.Errorf("resident after load grew %.1f MiB: the intermediate should not exist before the first run", mib(d))
	}
	ws, where, ok := big.WorkingSet()
	if !ok || where != "host" || ws != big.PeakWorkingSet || big.PeakRSS-big.RSSBeforeLoad != ws {
		t.Errorf("WorkingSet %d %s %v for %+v", ws, where, ok, big)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// cpuHog keeps 2 × NumCPU goroutines spinning until its stdin closes (the
// test's end) or a minute passes: another process taking the CPU.
func cpuHog() {
	n := 2 * runtime.NumCPU()
	runtime.GOMAXPROCS(n)
	stop := make(chan struct{})
	for range n {
		go func() {
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 1_000_000; i++ {
					x += i
				}
			}
		}()
	}
	fmt.Println("hogging")
	done := make(chan struct{})
	go func() { bufio.NewReader(os.Stdin).ReadString('\n'); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
	}
	close(stop)
}

// startHog starts the hog process and waits until it runs.
func startHog(t *testing.T) {
	t.Helper()
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "QS_FAKE_WORKER=hog")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "hogging") {
		t.Fatalf("hog did not start: %q %v", line, err)
	}
	time.Sleep(200 * time.Millisecond) // let it reach every CPU
}

// TestRunBesideACPUHogIsContended: a run while another process keeps
// twice as many threads as there are CPUs busy is marked contended. The
// hog takes about half of the run's cores whatever the machine's size
// (the share is (T + H − C) / (T + H) for T run threads, H = 2C hog
// threads, C CPUs), far above the 10% threshold, and other load on a busy
// machine only adds to it.
func TestRunBesideACPUHogIsContended(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	startHog(t)
	spec := Spec{ModelPath: mlpModel(t, dir, "m.onnx", 0), Batch: 4, Threads: min(2, runtime.NumCPU()),
		Duration: 1500 * time.Millisecond, MinWarmup: 2, MaxWarmup: 5}
	c := runWorker(t, spec).Metrics.Contention
	if c == nil {
		t.Fatal("contention not measured")
	}
	t.Logf("%s", c)
	if !c.Contended || c.Share < 0.25 || c.OthersCPUS <= 0 {
		t.Errorf("beside a hog of %d threads: %s", 2*runtime.NumCPU(), c)
	}
}

// TestQuietRunIsNotContended runs the worker with a /proc/stat reader that
// reports a machine where nothing but the worker ran (its busy time is
// exactly the worker's own), so the test holds on a busy CI machine: the
// run is not contended, which it could only be if the worker's own CPU
// time were counted as others'.
func TestQuietRunIsNotContended(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	var base float64 = 1000
	quiet := func() (telemetry.CPUTimes, error) {
		self, err := telemetry.SelfCPUSeconds()
		return telemetry.CPUTimes{Busy: base + self, Steal: 3, CPUs: 2, Self: self}, err
	}
	spec := Spec{ModelPath: mlpModel(t, dir, "m.onnx", 0), Batch: 4, Threads: 2, Duration: 500 * time.Millisecond, MinWarmup: 2, MaxWarmup: 5}
	var buf strings.Builder
	if err := serve(context.Background(), spec, NewEmitter(&buf), serveDeps{cpuTimes: quiet}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var ev Event
	var res Result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || json.Unmarshal(ev.Result, &res) != nil {
		t.Fatalf("last event %q: %v", lines[len(lines)-1], err)
	}
	c := res.Metrics.Contention
	if c == nil {
		t.Fatal("contention not measured")
	}
	if c.Contended || c.Share > 1e-9 || c.OthersCPUS > 1e-9 || c.SelfCPUS <= 0 || c.WallS < 0.5 || c.Threads != 2 {
		t.Errorf("a quiet run: share %g others %g self %g wall %g threads %d contended %v", c.Share, c.OthersCPUS, c.SelfCPUS, c.WallS, c.Threads, c.Contended)
	}
}

// shapedModel is a boundModel with an image input shape, for fidelityInputs.
type shapedModel struct {
	fakeModel
	shape []int64
}

func (s *shapedModel) inputShape() []int64 { return s.shape }

// TestFidelityInputsAreTheCheckInputs: the worker feeds exactly the
// images quantize --check does (quant.CheckInputs), not noise, and
// records which; only an input that is not an image gets seeded noise.
func TestFidelityInputsAreTheCheckInputs(t *testing.T) {
	in := quant.NewCheckInputs(5, quant.DefaultCheckSeed, "clip", [3]float32{0.48, 0.46, 0.41}, [3]float32{0.27, 0.26, 0.28})
	bd := &shapedModel{shape: []int64{2, 3, 16, 16}}
	n, fill, what := fidelityInputs(bd, Spec{FidelityInputs: &in})
	if n != 5 || what != in.String() || !strings.Contains(what, "5 seeded synthetic images (seed 7, clip normalisation)") {
		t.Fatalf("n %d, inputs %q", n, what)
	}
	img := quant.ImageInput{Channels: 3, Height: 16, Width: 16}
	for i := range n {
		got := make([]float32, 3*16*16)
		fill(got, i)
		want := in.Sample(img, i)
		for k := range want {
			if got[k] != want[k] {
				t.Fatalf("sample %d value %d: %v, want the check image's %v", i, k, got[k], want[k])
			}
		}
	}
	// Without a spec, ImageNet's normalisation and the default count.
	if n, _, what := fidelityInputs(bd, Spec{}); n != quant.DefaultCheckSamples || !strings.Contains(what, "imagenet normalisation") {
		t.Errorf("default inputs: %d %q", n, what)
	}
	if _, _, what := fidelityInputs(&shapedModel{shape: []int64{1, 1024}}, Spec{}); !strings.Contains(what, "N(0,1)") {
		t.Errorf("a non-image input: %q", what)
	}
}
