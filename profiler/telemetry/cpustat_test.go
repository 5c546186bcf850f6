package telemetry

import (
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	good := "cpu  261718 29814 126442 64953 772 100 741 50 7 0\n" +
		"cpu0 131105 14766 62698 33305 181 50 130 25 0 0\n" +
		"cpu1 130612 15048 63744 31648 591 50 611 25 0 0\n" +
		"intr 4658321 0 0\nctxt 123\nbtime 1700000000\nprocesses 9\n"
	got, err := ParseProcStat([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq = 261718+29814+126442+100+741 ticks.
	if want := (261718.0 + 29814 + 126442 + 100 + 741) / 100; got.Busy != want || got.Steal != 0.5 || got.CPUs != 2 || got.Self != 0 {
		t.Errorf("got %+v, want busy %v s, steal 0.5 s, 2 CPUs", got, want)
	}
	// idle+iowait = 64953+772 ticks.
	if got.Idle != 657.25 || got.Total() != got.Busy+657.25+0.5 {
		t.Errorf("idle %v, total %v", got.Idle, got.Total())
	}
	// A kernel without steal (fewer fields) is still read.
	old, err := ParseProcStat([]byte("cpu 10 0 10 50 0 0 0\ncpu0 10 0 10 50 0 0 0\n"))
	if err != nil || old.Busy != 0.2 || old.Steal != 0 || old.CPUs != 1 {
		t.Errorf("old kernel: %+v %v", old, err)
	}
	for _, bad := range []string{
		"", "intr 1 2 3\n", "cpu 1 2 3\ncpu0 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\ncpu0 1\n",
		"cpu 1 2 3 4 5 6 7 8\n", "cpu 1 2 3 4 5 6 7 8\ncpu 1 2 3 4 5 6 7 8\ncpu0 1\n",
		"cpu -1 2 3 4 5 6 7 8\ncpu0 1\n",
	} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestReadCPUTimesOfThisMachine(t *testing.T) {
	a, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := 0; i < 50_000_000; i++ { // burn some CPU time of our own
		x += i % 7
	}
	b, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if a.CPUs < 1 || b.Busy < a.Busy || b.Self <= a.Self || b.Steal < a.Steal {
		t.Errorf("readings %+v then %+v (%d)", a, b, x)
	}
}

func TestReadCPUTimesOnThisMachine(t *testing.T) {
	a, err := ReadCPUTimes()
	if err != nil {
		t.Skip(err)
	}
	if a.Total() <= 0 || a.Busy < 0 || a.Steal < 0 {
		t.Errorf("times %+v", a)
	}
	if d := a.Sub(a); d.Total() != 0 {
		t.Errorf("self difference %+v", d)
	}
}

// FuzzParseProcStat: any text is either read into sane figures or refused.
func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	f.Add([]byte("cpu 10 0 10 50 0 0 0\ncpu0 10 0 10 50 0 0 0\ncpu1 x\n"))
	f.Add([]byte("cpu 18446744073709551615 0 0 0 0 0 0 0\ncpu7 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseProcStat(b)
		if err != nil {
			return
		}
		if c.Busy < 0 || c.Steal < 0 || c.CPUs < 1 || c.CPUs > strings.Count(string(b), "cpu") {
			t.Errorf("parsed %+v from %q", c, b)
		}
	})
}
