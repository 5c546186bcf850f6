package telemetry

import "testing"

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
