package tui

import (
	"testing"

	"github.com/muesli/termenv"
)

// BenchmarkDashboardFrame is the UI's cost per tick mid-run: drain, chart
// redraw and the full frame at 120×40.
func BenchmarkDashboardFrame(b *testing.B) {
	f := newFixture(b, 120, 40, func(o *Options) { o.Profile = termenv.ANSI256 })
	studyMidRun(f)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.m.dash().chartKeys = [3]string{}
		f.m.dash().redraw(f.m.viewCtx())
		_ = f.m.View()
	}
}

// BenchmarkView is one frame without a chart redraw.
func BenchmarkView(b *testing.B) {
	f := newFixture(b, 120, 40, func(o *Options) { o.Profile = termenv.ANSI256 })
	studyMidRun(f)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = f.m.View()
	}
}
