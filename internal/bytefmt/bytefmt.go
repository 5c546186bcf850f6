// Package bytefmt writes byte counts the one way quantscope shows them:
// binary (IEC) units, three significant figures at most. Memory figures
// (RSS, GPU memory, cgroup limits) are counted by the kernel and the driver
// in powers of two, and model files sit beside them in the same tables, so
// every byte count uses the same units: KiB, MiB, GiB, TiB. Format writes
// the unit in full ("86.6 MiB") for sentences and listings; Short writes its
// first letter ("86.6M") for narrow table cells. Both round the same way.
package bytefmt

import "fmt"

// Binary units.
const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
	TiB = 1 << 40
)

// units, largest first.
var units = []struct {
	size int64
	name string
}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}}

// Format renders n bytes as "512 B", "1.5 KiB", "86.6 MiB", "312 MiB",
// "80.0 GiB": one decimal below 100 of a unit, none from 100 up. A negative
// count (a difference) keeps its sign.
func Format(n int64) string {
	num, unit := split(n)
	if unit == "" {
		return num + " B"
	}
	return num + " " + unit
}

// Short is Format with the unit cut to its letter and no space: "512B",
// "1.5K", "86.6M", "80.0G", for table cells where width counts.
func Short(n int64) string {
	num, unit := split(n)
	if unit == "" {
		return num + "B"
	}
	return num + unit[:1]
}

// split returns the number and the unit name ("" for bytes).
func split(n int64) (num, unit string) {
	neg := ""
	u := uint64(n)
	if n < 0 {
		neg, u = "-", uint64(-n) // -MinInt64 wraps to itself; as uint64 it is 2^63, the right magnitude
	}
	for _, x := range units {
		if u < uint64(x.size) {
			continue
		}
		v := float64(u) / float64(x.size)
		// Round first, so 99.96 MiB shows as "100 MiB", not "100.0 MiB".
		if r := float64(int64(v*10+0.5)) / 10; r >= 100 {
			return fmt.Sprintf("%s%.0f", neg, v), x.name
		}
		return fmt.Sprintf("%s%.1f", neg, v), x.name
	}
	return fmt.Sprintf("%s%d", neg, u), ""
}
