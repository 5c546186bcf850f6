package tui

import (
	"github.com/charmbracelet/bubbles/key"
)

// keyMap holds every key binding of the application. Screens match keys
// with key.Matches against these, list them in their ShortHelp and
// FullHelp, and the modals take their labels from them, so a binding is
// defined exactly once.
type keyMap struct {
	// Global. ForceQuit (ctrl+c) quits from anywhere, a text field
	// included: it asks while a study runs, and twice leaves at once.
	Help, Quit, ForceQuit, Back   key.Binding
	Setup, Dashboard, Heatmap     key.Binding
	Doctor                        key.Binding
	Tune                          key.Binding
	NextPane, PrevPane            key.Binding
	Up, Down, Left, Right         key.Binding
	PageUp, PageDown, Top, Bottom key.Binding
	Enter                         key.Binding

	// Study control.
	Stop, Cancel, Rerun, Export key.Binding
	// Control asks for (or takes) control of a shared study (serve).
	Control key.Binding

	// Run detail: rank the variant's layers by sensitivity.
	Layers key.Binding

	// Setup.
	Toggle, Filter, AddPath, EditOptions, Start key.Binding

	// Table.
	SortNext, SortReverse key.Binding

	// Heatmap.
	Metric, Group key.Binding

	// Confirmations and the export menu.
	Yes, No                          key.Binding
	ExportJSONL, ExportCSV, ExportMD key.Binding
}

func defaultKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Help:      b([]string{"?"}, "?", "help"),
		Quit:      b([]string{"q"}, "q", "quit"),
		ForceQuit: b([]string{"ctrl+c"}, "ctrl+c", "quit"),
		Back:      b([]string{"esc"}, "esc", "back"),
		Setup:     b([]string{"1"}, "1", "setup"),
		Dashboard: b([]string{"2"}, "2", "dashboard"),
		Heatmap:   b([]string{"3"}, "3", "heatmap"),
		Doctor:    b([]string{"4"}, "4", "doctor"),
		Tune:      b([]string{"5"}, "5", "tune"),
		NextPane:  b([]string{"tab"}, "tab", "next pane"),
		PrevPane:  b([]string{"shift+tab"}, "shift+tab", "previous pane"),
		Up:        b([]string{"up", "k"}, "↑/k", "up"),
		Down:      b([]string{"down", "j"}, "↓/j", "down"),
		Left:      b([]string{"left", "h"}, "←/h", "left"),
		Right:     b([]string{"right", "l"}, "→/l", "right"),
		PageUp:    b([]string{"pgup", "ctrl+u"}, "pgup", "page up"),
		PageDown:  b([]string{"pgdown", "ctrl+d"}, "pgdn", "page down"),
		Top:       b([]string{"home", "g"}, "g", "top"),
		Bottom:    b([]string{"end", "G"}, "G", "bottom"),
		Enter:     b([]string{"enter"}, "enter", "open"),

		Stop:    b([]string{"s"}, "s", "stop current run"),
		Cancel:  b([]string{"x"}, "x", "cancel study"),
		Rerun:   b([]string{"r"}, "r", "re-run row"),
		Export:  b([]string{"e"}, "e", "export"),
		Control: b([]string{"c"}, "c", "ask for control"),
		Layers:  b([]string{"L"}, "L", "rank layers by sensitivity"),

		Toggle:      b([]string{" "}, "space", "toggle"),
		Filter:      b([]string{"/"}, "/", "filter"),
		AddPath:     b([]string{"a"}, "a", "add .onnx path"),
		EditOptions: b([]string{"o"}, "o", "edit options"),
		Start:       b([]string{"enter"}, "enter", "start study"),

		SortNext:    b([]string{"o"}, "o", "sort column"),
		SortReverse: b([]string{"O"}, "O", "reverse sort"),

		Metric: b([]string{"m"}, "m", "metric"),
		Group:  b([]string{"]"}, "]", "next EP/batch"),

		Yes:         b([]string{"y", "Y"}, "y", "yes"),
		No:          b([]string{"n", "N", "esc"}, "n", "no"),
		ExportJSONL: b([]string{"j"}, "j", "results path (JSONL)"),
		ExportCSV:   b([]string{"c"}, "c", "CSV"),
		ExportMD:    b([]string{"m"}, "m", "Markdown"),
	}
}

// only returns the enabled bindings of bs.
func only(bs ...key.Binding) []key.Binding {
	out := bs[:0:0]
	for _, b := range bs {
		if b.Enabled() {
			out = append(out, b)
		}
	}
	return out
}

// withHelp returns b with a different help text (same keys).
func withHelp(b key.Binding, k, desc string) key.Binding {
	b.SetHelp(k, desc)
	return b
}

// studyKeys returns Stop and Cancel enabled only while a study runs.
func (k keyMap) studyKeys(running bool) (stop, cancel key.Binding) {
	stop, cancel = k.Stop, k.Cancel
	stop.SetEnabled(running)
	cancel.SetEnabled(running)
	return stop, cancel
}

// globalGroup is the help column every screen shares.
func (k keyMap) globalGroup() []key.Binding {
	return []key.Binding{k.Setup, k.Dashboard, k.Heatmap, k.Doctor, k.Tune, k.Help, k.Back, k.Quit}
}

// navGroup is the movement column.
func (k keyMap) navGroup() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.NextPane, k.PrevPane}
}
