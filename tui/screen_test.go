package tui

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/profiler/sensitivity"
	"github.com/quantscope/quantscope/profiler/study"
)

// Every screen keeps the contract.
var (
	_ Screen = (*setupModel)(nil)
	_ Screen = (*dashModel)(nil)
	_ Screen = (*heatModel)(nil)
	_ Screen = (*detailModel)(nil)
	_ Screen = (*doctorModel)(nil)
	_ Screen = (*tuneModel)(nil)
)

// screenCases shows each screen on a fixture with results (and a
// finished hardware check): how to get there, and keys to press first
// so that every key of its footer has something to act on.
var screenCases = []struct {
	id   screen
	show func(f *fixture)
}{
	{screenSetup, func(f *fixture) { f.keys("1") }},
	{screenDashboard, func(f *fixture) { f.keys("2") }},
	{screenHeatmap, func(f *fixture) { f.keys("3") }},
	{screenDetail, func(f *fixture) { f.keys("2", "down", "enter", "down") }},
	{screenDoctor, func(f *fixture) { doctorFinished(f); f.keys("down") }},
	{screenTune, func(f *fixture) { f.keys("1", "space", "5") }},
}

// newScreenFixture shows a screen over results read at start: two
// models at batch 1 (one variant failed) and one at batch 8, so the
// heatmap has two groups.
func newScreenFixture(t *testing.T, show func(f *fixture)) *fixture {
	t.Helper()
	f := newFixture(t, 200, 24, func(o *Options) {
		withDoctor(o)
		o.Tune = fakeTune(new(TuneRequest))
		o.Sensitivity = func(ctx context.Context, _ study.Experiment) (*sensitivity.Result, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	})
	b8 := rec("deit-tiny", "fp32", 1900, 4.1, 92<<20, 23<<20, 1, 1)
	b8.Experiment.Batch = 8
	f.loaded(loadedMsg{recs: []study.Record{
		rec("deit-tiny", "fp32", 642, 1.52, 92<<20, 23<<20, 1, 1),
		rec("deit-tiny", "int8", 981, 0.98, 41<<20, 6<<20, 0.99912, 0.984),
		rec("deit-small", "fp32", 233, 4.2, 330<<20, 88<<20, 1, 1),
		failedRec("deit-small", "int8", "worker: exit status 134 (SIGABRT)"),
		b8,
	}})
	f.send(toastExpiredMsg{id: f.m.toastID})
	show(f)
	return f
}

// keyMapBindings are the bindings keys.go defines, by their keys.
func keyMapBindings() map[string]bool {
	out := map[string]bool{}
	v := reflect.ValueOf(defaultKeyMap())
	for i := 0; i < v.NumField(); i++ {
		if b, ok := v.Field(i).Interface().(key.Binding); ok {
			out[strings.Join(b.Keys(), " ")] = true
		}
	}
	return out
}

// TestScreensKeepTheContract: the root shows each screen through the
// Screen interface; the footer and the help overlay are the screen's own
// ShortHelp and FullHelp, made of keys.go's bindings, all enabled; and
// every key in a footer does something on that screen.
func TestScreensKeepTheContract(t *testing.T) {
	if len(screenCases) != int(screenCount) {
		t.Fatalf("%d screen cases for %d screens: add the new screen here", len(screenCases), screenCount)
	}
	defined := keyMapBindings()
	for _, sc := range screenCases {
		t.Run(screenNames[sc.id], func(t *testing.T) {
			f := newScreenFixture(t, sc.show)
			if f.m.screen != sc.id {
				t.Fatalf("showing %v, want %v", f.m.screen, sc.id)
			}
			s := f.m.screens[sc.id]
			short := s.ShortHelp()
			if len(short) == 0 {
				t.Fatal("no short help")
			}
			lines := strings.Split(f.view(), "\n")
			footer := lines[len(lines)-1]
			for _, b := range short {
				h := b.Help()
				switch {
				case !b.Enabled():
					t.Errorf("%q is in the footer but disabled", h.Key)
				case !defined[strings.Join(b.Keys(), " ")]:
					t.Errorf("%q (%v) is not a binding of keys.go", h.Key, b.Keys())
				case !strings.Contains(footer, h.Key+" "+h.Desc):
					t.Errorf("footer %q lacks the screen's %q %q", footer, h.Key, h.Desc)
				}
			}

			full := s.FullHelp()
			if len(full) == 0 || len(full[0]) == 0 {
				t.Fatal("no full help")
			}
			f.keys("?")
			view := f.view()
			if !strings.Contains(view, "Keys on the "+screenNames[sc.id]+" screen") {
				t.Fatalf("help overlay of the wrong screen:\n%s", view)
			}
			for _, col := range full {
				for _, b := range col {
					if !defined[strings.Join(b.Keys(), " ")] {
						t.Errorf("help lists %q (%v), not a binding of keys.go", b.Help().Key, b.Keys())
					}
					if !strings.Contains(view, b.Help().Desc) {
						t.Errorf("help overlay lacks %q", b.Help().Desc)
					}
				}
			}

			for _, b := range short {
				k := b.Keys()[0]
				g := newScreenFixture(t, sc.show)
				before := g.view()
				cmd := g.send(keyMsg(k))
				g.sync()
				if g.view() != before {
					continue
				}
				if cmd == nil || !slices.Contains(b.Keys(), "q") {
					t.Errorf("%q (%s) does nothing here", k, b.Help().Desc)
					continue
				}
				if _, quit := cmd().(tea.QuitMsg); !quit {
					t.Errorf("%q neither quits nor changes the screen", k)
				}
			}
		})
	}
}

// TestForceQuitBinding: ctrl+c is keys.go's ForceQuit, not a key of
// Quit, and it quits from a text field where q is typed.
func TestForceQuitBinding(t *testing.T) {
	k := defaultKeyMap()
	if slices.Contains(k.Quit.Keys(), "ctrl+c") || !slices.Equal(k.ForceQuit.Keys(), []string{"ctrl+c"}) {
		t.Fatalf("Quit %v, ForceQuit %v", k.Quit.Keys(), k.ForceQuit.Keys())
	}
	f := newFixture(t, 120, 40, nil)
	f.keys("/", "q")
	if !f.m.setup().capturing() || f.m.setup().filter != "q" {
		t.Fatalf("q in the filter field: capturing %v, filter %q", f.m.setup().capturing(), f.m.setup().filter)
	}
	cmd := f.send(keyMsg("ctrl+c"))
	if cmd == nil {
		t.Fatal("ctrl+c in a text field did nothing")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("ctrl+c in a text field did not quit")
	}
}
