package telemetry

import (
	"syscall"
	"testing"
)

func TestParseProcStatus(t *testing.T) {
	good := "Name:\tquantscope\nVmPeak:\t 900000 kB\nVmHWM:\t  524288 kB\nVmRSS:\t  262144 kB\nThreads:\t9\n"
	m, err := parseProcStatus([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 256<<20 || m.PeakRSS != 512<<20 {
		t.Errorf("got %+v, want RSS 256 MiB and peak 512 MiB", m)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\nVmHWM:\t1 kB\n", "VmRSS:\tlots kB\nVmHWM:\t1 kB\n"} {
		if _, err := parseProcStatus([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestReadProcMemoryOfThisProcess(t *testing.T) {
	before, err := ReadProcMemory()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	after, err := ReadProcMemory()
	if err != nil {
		t.Fatal(err)
	}
	if after.RSS-before.RSS < 32<<20 || after.PeakRSS < after.RSS {
		t.Errorf("touching 64 MiB moved RSS %d → %d (peak %d)", before.RSS, after.RSS, after.PeakRSS)
	}
	_ = buf[len(buf)-1]
}

// touchAndUnmap maps n bytes, writes every page (they become resident) and
// unmaps them again: a short peak of n bytes that RSS no longer shows.
func touchAndUnmap(t *testing.T, n int) {
	t.Helper()
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	if err := syscall.Munmap(b); err != nil {
		t.Fatal(err)
	}
}

func TestResetPeakRSSCatchesAShortPeak(t *testing.T) {
	const peak = 96 << 20
	touchAndUnmap(t, peak) // an old peak the watch must not report
	w := StartPeakRSS()
	p0, src, note, err := w.Peak()
	if err != nil {
		t.Fatal(err)
	}
	if src != PeakHighWater {
		t.Fatalf("peak source %q (%s): this kernel refused to reset VmHWM", src, note)
	}
	start, _ := ReadProcMemory()
	if p0-start.RSS > 48<<20 {
		t.Fatalf("right after the reset the peak is %d MiB above RSS: the old peak was kept", (p0-start.RSS)>>20)
	}
	// A peak between two samplers' readings: gone from RSS by the time
	// anyone looks, but the high-water mark has it.
	touchAndUnmap(t, peak)
	p1, _, _, err := w.Peak()
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ReadProcMemory()
	if got := p1 - start.RSS; got < peak*9/10 {
		t.Errorf("peak %d MiB above the start, want about %d MiB", got>>20, peak>>20)
	}
	if end.RSS-start.RSS > 48<<20 {
		t.Errorf("RSS still %d MiB above the start after unmapping", (end.RSS-start.RSS)>>20)
	}
}

func TestPeakRSSWatchSampledFallback(t *testing.T) {
	w := &PeakRSSWatch{note: "reset refused"}
	w.Observe(500 << 20)
	w.Observe(300 << 20)
	p, src, note, err := w.Peak()
	if err != nil || src != PeakSampled || note != "reset refused" || p < 500<<20 {
		t.Errorf("peak %d source %q note %q err %v", p, src, note, err)
	}
}
