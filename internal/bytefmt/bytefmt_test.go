package bytefmt

import (
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		n           int64
		long, short string
	}{
		{0, "0 B", "0B"},
		{12, "12 B", "12B"},
		{1023, "1023 B", "1023B"},
		{1024, "1.0 KiB", "1.0K"},
		{1536, "1.5 KiB", "1.5K"},
		{4_100, "4.0 KiB", "4.0K"},
		{512 << 20, "512 MiB", "512M"},
		{86_567_656, "82.6 MiB", "82.6M"},
		{346_382_240, "330 MiB", "330M"},
		{100*MiB - 1, "100 MiB", "100M"}, // 99.99… rounds to 100: no ".0"
		{2_528_183_200, "2.4 GiB", "2.4G"},
		{80 << 30, "80.0 GiB", "80.0G"},
		{2 << 40, "2.0 TiB", "2.0T"},
		{-3 * MiB / 2, "-1.5 MiB", "-1.5M"},
		{math.MinInt64, "-8388608 TiB", "-8388608T"},
	} {
		if got := Format(tc.n); got != tc.long {
			t.Errorf("Format(%d) = %q, want %q", tc.n, got, tc.long)
		}
		if got := Short(tc.n); got != tc.short {
			t.Errorf("Short(%d) = %q, want %q", tc.n, got, tc.short)
		}
	}
}
