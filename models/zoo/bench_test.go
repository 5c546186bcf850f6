package zoo_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/zoo"
)

// BenchmarkBuild builds models into an empty cache entry (weights, graph,
// files written and synced). It reports the peak resident memory of one
// build in a fresh process (peak-RSS-MB), and what the build added to the
// process's resident memory over the model's size on disk (build/size:
// peak minus the process's footprint before the build, about 10 MB of Go
// runtime and test binary). Targets on a 2-core machine: vit-base-16 under
// 3 s, vit-huge-14 under 40 s, peak memory under 1.3× the model's size.
//
//	go test ./models/zoo -run '^$' -bench Build -benchtime 1x
func BenchmarkBuild(b *testing.B) {
	for _, name := range []string{"deit-tiny", "vit-base-16", "vit-huge-14"} {
		b.Run(name, func(b *testing.B) {
			s, _ := zoo.Lookup(name)
			dir := b.TempDir()
			var size int64
			for b.Loop() {
				r, err := zoo.Ensure(context.Background(), s, zoo.WithCacheDir(dir), zoo.WithRebuild(true))
				if err != nil {
					b.Fatal(err)
				}
				size = r.Bytes
			}
			b.SetBytes(size)
			if testing.Short() {
				return
			}
			// Peak memory of one build, alone in a fresh process.
			runtime.GC()
			debug.FreeOSMemory()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBuildPeakHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "QUANTSCOPE_ZOO_PEAK_MODEL="+name, "QUANTSCOPE_ZOO_PEAK_DIR="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("peak helper: %v\n%s", err, out)
			}
			peak, base := parseNum(string(out), "PEAK_RSS_BYTES="), parseNum(string(out), "BASE_RSS_BYTES=")
			if peak <= 0 || base <= 0 {
				b.Fatalf("peak helper printed no figures:\n%s", out)
			}
			b.ReportMetric(float64(peak)/1e6, "peak-RSS-MB")
			b.ReportMetric(float64(size)/1e6, "size-MB")
			b.ReportMetric(float64(peak-base)/float64(size), "build/size")
		})
	}
}

// TestBuildPeakHelper builds one model and prints the process's peak RSS;
// BenchmarkBuild runs it in a child process.
func TestBuildPeakHelper(t *testing.T) {
	name := os.Getenv("QUANTSCOPE_ZOO_PEAK_MODEL")
	if name == "" {
		t.Skip("helper process for BenchmarkBuild")
	}
	s, _ := zoo.Lookup(name)
	base, err := procStatus("VmRSS:")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zoo.Ensure(context.Background(), s, zoo.WithCacheDir(os.Getenv("QUANTSCOPE_ZOO_PEAK_DIR")), zoo.WithRebuild(true)); err != nil {
		t.Fatal(err)
	}
	hwm, err := procStatus("VmHWM:")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BASE_RSS_BYTES=%d PEAK_RSS_BYTES=%d", base, hwm)
}

// procStatus reads a memory figure (VmRSS:, VmHWM:) of this process in
// bytes.
func procStatus(key string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, sc.Err()
}

// parseNum returns the number after key in out (0 if absent).
func parseNum(out, key string) int64 {
	_, after, ok := strings.Cut(out, key)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(strings.Fields(after)[0], 10, 64)
	return n
}
