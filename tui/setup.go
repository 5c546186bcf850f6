package tui

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/profiler/study"
)

// setupPane is a pane of the setup screen.
type setupPane int

const (
	paneModels setupPane = iota
	panePrecisions
	paneSettings
	setupPanes
)

// inputMode is what the setup screen's text input is editing.
type inputMode int

const (
	inputNone inputMode = iota
	inputFilter
	inputPath
	inputOptions
	inputSetting
)

// modelItem is one row of the model list.
type modelItem struct {
	info        ModelInfo
	selected    bool
	cached      bool
	cachedKnown bool
}

// precItem is one precision toggle with its option presets.
type precItem struct {
	kind    string
	desc    string
	on      bool
	locked  bool     // fp32: always on, the baseline
	presets []string // option strings; "" means the defaults
	preset  int
	custom  string // typed options (overrides the presets when set)
}

func (p precItem) options() string {
	if p.custom != "" {
		return p.custom
	}
	return p.presets[p.preset]
}

// spec is the precision spec string, e.g. "int4:block=64".
func (p precItem) spec() string {
	if o := p.options(); o != "" {
		return p.kind + ":" + o
	}
	return p.kind
}

func defaultPrecisions() []precItem {
	return []precItem{
		{kind: "fp32", desc: "baseline", on: true, locked: true, presets: []string{""}},
		{kind: "fp16", desc: "half weights + activations", presets: []string{"", "mixed"}},
		{kind: "int8", desc: "dynamic int8", presets: []string{"", "per-tensor", "reduce-range"}},
		{kind: "int8-static", desc: "QDQ, calibrated", presets: []string{"", "calib=minmax", "calib=entropy"}},
		{kind: "int4", desc: "weight-only blockwise", presets: []string{"", "block=64", "block=128", "asym"}},
	}
}

// setting is a row of the run-settings pane.
type setting int

const (
	setEP setting = iota
	setBatch
	setDuration
	setThreads
	setRepeat
	setFusions
	setEvalDir // labelled image folder for accuracy ("" = none)
	setLabels  // its labels file ("" = sorted folder names)
	settingCount
)

var (
	batchPresets    = []string{"1", "1,8", "8", "1,8,32", "32"}
	durationPresets = []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute}
	threadPresets   = []int{0, 1, 2, 4, 8, 16, 32, 64}
)

// setupModel is the setup screen: models, precisions and run settings.
type setupModel struct {
	items    []modelItem
	loading  bool
	loadErr  string
	filter   string
	cursor   int // position in the filtered list
	offset   int
	pane     setupPane
	precs    []precItem
	precCur  int
	setCur   setting
	eps      []string
	epNotes  []string
	ep       int
	epChosen bool // the EP was given (Options.EP) or picked: the environment's default does not replace it
	batches  string
	duration time.Duration
	threads  int
	repeat   int
	fusions  bool // run models as models/optimize fuses them
	evalDir  string
	labels   string
	evalNote string // what the folder check found ("" before one)
	evalErr  bool   // the check failed: starting is refused

	mode  inputMode
	input textinput.Model

	err string // why the last start was refused

	// catalogReady and autoStarted: Options.AutoStart starts the study
	// once the catalog and the environment are in.
	catalogReady, autoStarted bool

	app           *app
	width, height int
}

func newSetup(a *app) *setupModel {
	o := a.opts
	in := textinput.New()
	in.Prompt = ""
	in.CharLimit = 512
	in.Cursor.SetMode(cursor.CursorStatic)
	m := &setupModel{
		app:      a,
		loading:  o.Catalog != nil,
		precs:    defaultPrecisions(),
		eps:      []string{cmp.Or(o.EP, "cpu")},
		epChosen: o.EP != "",
		duration: o.Duration,
		threads:  o.Threads,
		repeat:   1,
		fusions:  o.Optimize,
		input:    in,
	}
	m.batches = joinInts(o.Batches)
	m.evalDir, m.labels = o.EvalDir, o.Labels
	for _, p := range o.Precisions {
		m.enablePrecision(p)
	}
	for _, name := range o.Models {
		m.addModel(ModelInfo{Name: name, Family: familyOfPath(name)}, true)
	}
	return m
}

// familyOfPath labels a typed model: FamilyFile for a path, "" for a name.
func familyOfPath(name string) string {
	if strings.HasSuffix(strings.ToLower(name), ".onnx") || strings.ContainsRune(name, os.PathSeparator) {
		return FamilyFile
	}
	return ""
}

// enablePrecision switches on the precision of spec, with its options.
func (m *setupModel) enablePrecision(spec string) {
	kind, opts, _ := strings.Cut(strings.TrimSpace(spec), ":")
	for i := range m.precs {
		p := &m.precs[i]
		if p.kind != strings.ToLower(kind) {
			continue
		}
		p.on = true
		if opts == "" {
			return
		}
		for j, pr := range p.presets {
			if pr == opts {
				p.preset = j
				return
			}
		}
		p.custom = opts
		return
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// setModels installs the catalog, keeping selections and typed paths.
func (m *setupModel) setModels(models []ModelInfo, err error) {
	m.loading = false
	if err != nil {
		m.loadErr = err.Error()
	}
	for _, info := range models {
		m.addModel(info, false)
	}
}

// addModel adds (or updates) a model, optionally selecting it.
func (m *setupModel) addModel(info ModelInfo, sel bool) {
	for i := range m.items {
		if m.items[i].info.Name == info.Name {
			if info.Family != "" {
				fam := m.items[i].info.Family
				m.items[i].info = info
				if info.Family == "" {
					m.items[i].info.Family = fam
				}
			}
			m.items[i].selected = m.items[i].selected || sel
			return
		}
	}
	m.items = append(m.items, modelItem{info: info, selected: sel})
}

// setCached marks which models are built.
func (m *setupModel) setCached(c map[string]bool) {
	for i := range m.items {
		if v, ok := c[m.items[i].info.Name]; ok {
			m.items[i].cached, m.items[i].cachedKnown = v, true
		}
	}
}

// setEnvironment installs the usable execution providers.
func (m *setupModel) setEnvironment(env Environment) {
	if len(env.EPs) == 0 {
		return
	}
	cur := m.eps[m.ep]
	if !m.epChosen && slices.Contains(env.EPs, env.DefaultEP) {
		cur = env.DefaultEP // CUDA when it is ready
	}
	m.eps, m.epNotes, m.ep = env.EPs, env.EPNotes, 0
	for i, e := range m.eps {
		if e == cur {
			m.ep = i
		}
	}
}

// currentEP is the execution provider the next study runs on.
func (m setupModel) currentEP() string { return m.eps[m.ep] }

// visible returns the indices of items matching the filter.
func (m setupModel) visible() []int {
	f := strings.ToLower(strings.TrimSpace(m.filter))
	var out []int
	for i, it := range m.items {
		if f == "" || strings.Contains(strings.ToLower(it.info.Name), f) || strings.Contains(strings.ToLower(it.info.Family), f) {
			out = append(out, i)
		}
	}
	return out
}

// selectedModels lists the chosen models in list order.
func (m setupModel) selectedModels() []string {
	var out []string
	for _, it := range m.items {
		if it.selected {
			out = append(out, it.info.Name)
		}
	}
	return out
}

// selectedPrecisions lists the chosen precision specs.
func (m setupModel) selectedPrecisions() []string {
	var out []string
	for _, p := range m.precs {
		if p.on {
			out = append(out, p.spec())
		}
	}
	return out
}

// parseBatches reads "1,8,32".
func parseBatches(s string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("batch size %q: want a whole number ≥ 1", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no batch size")
	}
	return out, nil
}

// planConfig builds the study request from the screen, or says what is
// missing.
func (m setupModel) planConfig() (study.PlanConfig, error) {
	models := m.selectedModels()
	if len(models) == 0 {
		return study.PlanConfig{}, fmt.Errorf("pick at least one model (space toggles, / filters, a adds an .onnx path)")
	}
	batches, err := parseBatches(m.batches)
	if err != nil {
		return study.PlanConfig{}, err
	}
	return study.PlanConfig{
		Models:     models,
		Precisions: m.selectedPrecisions(),
		EPs:        []string{m.eps[m.ep]},
		Batches:    batches,
		Threads:    m.threads,
		Repeat:     m.repeat,
		Optimize:   m.fusions,
	}, nil
}

// Update implements Screen: keys, the catalog and which models are
// built, a checked path, the environment, and a refused start.
func (m *setupModel) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		next, cmd, req := m.update(msg, m.app.keys)
		*m = next
		if req != nil {
			m.app.post(startMsg{req: *req})
		}
		return m, cmd
	case catalogMsg:
		m.setModels(msg.models, msg.err)
		m.catalogReady = true
		cat, ctx := m.app.opts.Catalog, m.app.ctx
		if msg.err != nil || cat == nil {
			return m, nil
		}
		names := make([]string, len(msg.models))
		for i, mi := range msg.models {
			names[i] = mi.Name
		}
		m.autoStart()
		return m, func() tea.Msg {
			c, err := cat.Cached(ctx, names)
			return cachedMsg{cached: c, err: err}
		}
	case cachedMsg:
		if msg.err == nil {
			m.setCached(msg.cached)
		}
	case pathCheckedMsg:
		m.pathChecked(msg)
	case evalCheckedMsg:
		m.evalChecked(msg)
	case envMsg:
		m.setEnvironment(msg.env)
	case snapshotMsg:
		m.autoStart()
	case startRefusedMsg:
		m.err = msg.reason
	}
	return m, nil
}

// autoStart starts the screen's study once (Options.AutoStart, the
// demo) when the catalog and the environment are known.
func (m *setupModel) autoStart() {
	if !m.app.opts.AutoStart || m.autoStarted || !m.catalogReady || !m.app.envReady {
		return
	}
	m.autoStarted = true
	cfg, err := m.planConfig()
	if err != nil {
		m.err = err.Error()
		return
	}
	m.app.post(startMsg{req: startRequest{cfg: cfg, duration: m.duration}})
}

// View implements Screen.
func (m *setupModel) View() string { return m.view(m.app.viewCtx()) }

// SetSize implements Screen.
func (m *setupModel) SetSize(w, h int) { m.width, m.height = w, h }

// choice is what the screen would run now.
func (m *setupModel) choice() setupChoice {
	c := setupChoice{ep: m.currentEP(), duration: m.duration, optimize: m.fusions,
		evalDir: expandHome(m.evalDir), labels: expandHome(m.labels)}
	if sel := m.selectedModels(); len(sel) > 0 {
		c.model = sel[0]
	}
	return c
}

// ShortHelp implements Screen: a text field's keys while one is open.
func (m *setupModel) ShortHelp() []key.Binding {
	k := m.app.keys
	if m.capturing() {
		return []key.Binding{withHelp(k.Enter, "enter", "done"), withHelp(k.Back, "esc", "cancel")}
	}
	start := k.Start
	if m.app.running() {
		start = withHelp(start, "enter", "queue")
	}
	return only(start, k.Toggle, k.Filter, k.AddPath, k.NextPane, k.Dashboard, k.Help, k.Quit)
}

// FullHelp implements Screen.
func (m *setupModel) FullHelp() [][]key.Binding {
	k := m.app.keys
	return [][]key.Binding{{k.Start, k.Toggle, k.Filter, k.AddPath,
		withHelp(k.Left, "←/→", "cycle options / value"), withHelp(k.EditOptions, "o", "type options / value"), k.Back},
		k.navGroup()}
}

// startRequest asks the root to plan and queue a study.
type startRequest struct {
	cfg      study.PlanConfig
	duration time.Duration
	// evalDir and labels ask for accuracy on a labelled image folder.
	evalDir, labels string
	// force starts it although another quantscope runs a study here
	// (the user answered the question).
	force bool
}

// evalCheckedMsg reports what a labelled image folder holds, or what is
// wrong with it.
type evalCheckedMsg struct {
	dir, labels string
	summary     string
	err         error
}

// checkEval scans a labelled image folder off the UI goroutine.
func checkEval(dir, labels string) tea.Cmd {
	return func() tea.Msg {
		f, err := imageset.Scan(expandHome(dir), expandHome(labels))
		if err != nil {
			return evalCheckedMsg{dir: dir, labels: labels, err: err}
		}
		sum := fmt.Sprintf("%d images · %d classes", len(f.Items), len(f.Classes))
		if len(f.Notes) > 0 {
			sum += " · " + f.Notes[0]
		}
		return evalCheckedMsg{dir: dir, labels: labels, summary: sum}
	}
}

// evalChecked records a folder check if it is of the current setting.
func (m *setupModel) evalChecked(msg evalCheckedMsg) {
	if msg.dir != m.evalDir || msg.labels != m.labels {
		return
	}
	m.evalErr = msg.err != nil
	m.evalNote = msg.summary
	if msg.err != nil {
		m.evalNote = msg.err.Error()
	}
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}

// pathCheckedMsg reports whether a typed model path can be used.
type pathCheckedMsg struct {
	path string
	err  error
}

// checkPath stats a typed path off the UI goroutine.
func checkPath(p string) tea.Cmd {
	return func() tea.Msg {
		p = strings.TrimSpace(p)
		if strings.HasPrefix(p, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				p = filepath.Join(home, p[2:])
			}
		}
		st, err := os.Stat(p)
		switch {
		case err != nil:
			return pathCheckedMsg{path: p, err: err}
		case st.IsDir():
			return pathCheckedMsg{path: p, err: fmt.Errorf("%s is a directory: give the .onnx file", p)}
		case !strings.HasSuffix(strings.ToLower(p), ".onnx"):
			return pathCheckedMsg{path: p, err: fmt.Errorf("%s: not an .onnx file", p)}
		}
		return pathCheckedMsg{path: p}
	}
}

// capturing reports whether keys go to the text input.
func (m setupModel) capturing() bool { return m.mode != inputNone }

// beginInput focuses the text input for mode with an initial value.
func (m *setupModel) beginInput(mode inputMode, value, placeholder string) tea.Cmd {
	m.mode = mode
	m.input.SetValue(value)
	m.input.Placeholder = placeholder
	m.input.CursorEnd()
	return m.input.Focus()
}

// update handles a key; it may return a start request.
func (m setupModel) update(msg tea.KeyMsg, k keyMap) (setupModel, tea.Cmd, *startRequest) {
	if m.mode != inputNone {
		return m.updateInput(msg)
	}
	m.err = ""
	switch {
	case key.Matches(msg, k.NextPane):
		m.pane = (m.pane + 1) % setupPanes
	case key.Matches(msg, k.PrevPane):
		m.pane = (m.pane + setupPanes - 1) % setupPanes
	case key.Matches(msg, k.Filter):
		m.pane = paneModels
		return m, m.beginInput(inputFilter, m.filter, "name or family"), nil
	case key.Matches(msg, k.AddPath):
		return m, m.beginInput(inputPath, "", "path/to/model.onnx"), nil
	case key.Matches(msg, k.Start):
		cfg, err := m.planConfig()
		if err != nil {
			m.err = err.Error()
			return m, nil, nil
		}
		if m.evalErr {
			m.err = "images: " + m.evalNote + " (o edits, space clears)"
			return m, nil, nil
		}
		req := &startRequest{cfg: cfg, duration: m.duration}
		if m.evalDir != "" {
			req.evalDir, req.labels = expandHome(m.evalDir), expandHome(m.labels)
		}
		return m, nil, req
	case key.Matches(msg, k.Back) && m.filter != "":
		m.filter, m.cursor, m.offset = "", 0, 0
	default:
		switch m.pane {
		case paneModels:
			m.updateModels(msg, k)
		case panePrecisions:
			return m, m.updatePrecisions(msg, k), nil
		case paneSettings:
			return m, m.updateSettings(msg, k), nil
		}
	}
	return m, nil, nil
}

func (m *setupModel) updateModels(msg tea.KeyMsg, k keyMap) {
	vis := m.visible()
	switch {
	case key.Matches(msg, k.Up):
		m.cursor--
	case key.Matches(msg, k.Down):
		m.cursor++
	case key.Matches(msg, k.PageUp):
		m.cursor -= max(1, m.listHeight()-1)
	case key.Matches(msg, k.PageDown):
		m.cursor += max(1, m.listHeight()-1)
	case key.Matches(msg, k.Top):
		m.cursor = 0
	case key.Matches(msg, k.Bottom):
		m.cursor = len(vis) - 1
	case key.Matches(msg, k.Toggle):
		if m.cursor >= 0 && m.cursor < len(vis) {
			it := &m.items[vis[m.cursor]]
			it.selected = !it.selected
			m.cursor++
		}
	}
	m.cursor = max(0, min(len(vis)-1, m.cursor))
	m.offset = scrollOffset(m.offset, m.cursor, m.listHeight(), len(vis))
}

func (m *setupModel) updatePrecisions(msg tea.KeyMsg, k keyMap) tea.Cmd {
	p := &m.precs[m.precCur]
	switch {
	case key.Matches(msg, k.Up):
		m.precCur = max(0, m.precCur-1)
	case key.Matches(msg, k.Down):
		m.precCur = min(len(m.precs)-1, m.precCur+1)
	case key.Matches(msg, k.Toggle):
		if p.locked {
			m.err = "fp32 is the baseline every variant is compared with: it always runs"
		} else {
			p.on = !p.on
		}
	case key.Matches(msg, k.Left), key.Matches(msg, k.Right):
		d := 1
		if key.Matches(msg, k.Left) {
			d = len(p.presets) - 1
		}
		p.custom = ""
		p.preset = (p.preset + d) % len(p.presets)
		if !p.locked && len(p.presets) > 1 {
			p.on = true
		}
	case key.Matches(msg, k.EditOptions):
		if p.locked {
			m.err = "fp32 has no options"
			return nil
		}
		return m.beginInput(inputOptions, p.options(), "e.g. block=64,asym")
	}
	return nil
}

func (m *setupModel) updateSettings(msg tea.KeyMsg, k keyMap) tea.Cmd {
	switch {
	case key.Matches(msg, k.Up):
		m.setCur = max(0, m.setCur-1)
	case key.Matches(msg, k.Down):
		m.setCur = min(settingCount-1, m.setCur+1)
	case key.Matches(msg, k.Left), key.Matches(msg, k.Right), key.Matches(msg, k.Toggle):
		d := 1
		if key.Matches(msg, k.Left) {
			d = -1
		}
		m.cycleSetting(d)
	case key.Matches(msg, k.EditOptions):
		switch m.setCur {
		case setBatch:
			return m.beginInput(inputSetting, m.batches, "1,8,32")
		case setDuration:
			return m.beginInput(inputSetting, fmtDuration(m.duration), "10s")
		case setThreads:
			return m.beginInput(inputSetting, strconv.Itoa(m.threads), "0 = one per physical core")
		case setRepeat:
			return m.beginInput(inputSetting, strconv.Itoa(m.repeat), "1")
		case setEvalDir:
			return m.beginInput(inputSetting, m.evalDir, "DIR/<class>/*.jpg (ImageFolder)")
		case setLabels:
			return m.beginInput(inputSetting, m.labels, "class names, one a line, in output order")
		}
	}
	return nil
}

// cycleSetting steps the current setting through its presets.
func (m *setupModel) cycleSetting(d int) {
	switch m.setCur {
	case setEP:
		m.ep = ((m.ep+d)%len(m.eps) + len(m.eps)) % len(m.eps)
		m.epChosen = true
	case setBatch:
		m.batches = cyclePreset(batchPresets, m.batches, d)
	case setDuration:
		m.duration = cyclePreset(durationPresets, m.duration, d)
	case setThreads:
		m.threads = cyclePreset(threadPresets, m.threads, d)
	case setRepeat:
		m.repeat = max(1, min(10, m.repeat+d))
	case setFusions:
		m.fusions = !m.fusions
	case setEvalDir, setLabels:
		// Space and arrows clear a path (o types one).
		if m.setCur == setEvalDir {
			m.evalDir, m.labels = "", ""
		} else {
			m.labels = ""
		}
		m.evalNote, m.evalErr = "", false
	}
}

// cyclePreset returns the preset d steps from cur, wrapping around; from a
// value that is not a preset (typed by the user) a step forward goes to
// the first preset and a step back to the last.
func cyclePreset[T comparable](presets []T, cur T, d int) T {
	i := slices.Index(presets, cur)
	if i < 0 && d < 0 {
		i = 0
	}
	n := len(presets)
	return presets[((i+d)%n+n)%n]
}

// updateInput edits the focused text field.
func (m setupModel) updateInput(msg tea.KeyMsg) (setupModel, tea.Cmd, *startRequest) {
	switch msg.Type {
	case tea.KeyEsc:
		if m.mode == inputFilter {
			m.filter = ""
		}
		m.mode = inputNone
		m.input.Blur()
		return m, nil, nil
	case tea.KeyEnter:
		v := strings.TrimSpace(m.input.Value())
		mode := m.mode
		m.mode = inputNone
		m.input.Blur()
		switch mode {
		case inputFilter:
			m.filter = v
		case inputPath:
			if v != "" {
				return m, checkPath(v), nil
			}
		case inputOptions:
			p := &m.precs[m.precCur]
			p.custom = v
			if i := slices.Index(p.presets, v); i >= 0 {
				p.custom, p.preset = "", i
			}
			p.on = true
		case inputSetting:
			m.commitSetting(v)
			if (m.setCur == setEvalDir || m.setCur == setLabels) && m.evalDir != "" {
				m.evalNote, m.evalErr = "checking…", false
				return m, checkEval(m.evalDir, m.labels), nil
			}
		}
		return m, nil, nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	if m.mode == inputFilter {
		m.filter = m.input.Value()
		m.cursor, m.offset = 0, 0
	}
	return m, cmd, nil
}

// commitSetting validates and stores a typed setting.
func (m *setupModel) commitSetting(v string) {
	switch m.setCur {
	case setBatch:
		if _, err := parseBatches(v); err != nil {
			m.err = err.Error()
			return
		}
		m.batches = v
	case setDuration:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			m.err = fmt.Sprintf("duration %q: want e.g. 10s, 1m30s", v)
			return
		}
		m.duration = d
	case setThreads:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			m.err = fmt.Sprintf("threads %q: want 0 (default) or more", v)
			return
		}
		m.threads = n
	case setRepeat:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			m.err = fmt.Sprintf("repeat %q: want 1 or more", v)
			return
		}
		m.repeat = n
	case setEvalDir:
		m.evalDir = v
		if v == "" {
			m.labels, m.evalNote, m.evalErr = "", "", false
		}
	case setLabels:
		if v != "" && m.evalDir == "" {
			m.err = "labels go with an image folder: set Images first"
			return
		}
		m.labels = v
	}
}

// pathChecked adds a checked path to the list, selected.
func (m *setupModel) pathChecked(msg pathCheckedMsg) {
	if msg.err != nil {
		m.err = msg.err.Error()
		return
	}
	m.addModel(ModelInfo{Name: msg.path, Family: FamilyFile}, true)
	m.filter = ""
	vis := m.visible()
	for i, idx := range vis {
		if m.items[idx].info.Name == msg.path {
			m.cursor = i
		}
	}
	m.offset = scrollOffset(m.offset, m.cursor, m.listHeight(), len(vis))
}

// planSize counts the runs and estimates the time of the current choice.
func (m setupModel) planSize() (runs int, est time.Duration) {
	cfg, err := m.planConfig()
	if err != nil {
		return 0, 0
	}
	plan, err := study.Plan(cfg)
	if err != nil {
		return 0, 0
	}
	return len(plan), time.Duration(len(plan)) * (m.duration + defaultOverhead)
}

// Layout.

// rightWidth is the width of the precisions/settings column.
func (m setupModel) rightWidth() int {
	if m.width >= 100 {
		return 40
	}
	return max(30, min(36, m.width*2/5))
}

// bodyHeight is the height of the panes (the summary line below them).
func (m setupModel) bodyHeight() int { return max(4, m.height-1) }

// listHeight is the number of model rows visible.
func (m setupModel) listHeight() int { return max(1, m.bodyHeight()-5) }

func (m setupModel) view(c viewCtx) string {
	s := c.st
	rw := m.rightWidth()
	lw := m.width - rw
	h := m.bodyHeight()
	precH := len(m.precs) + 3
	setH := int(settingCount) + 2 + len(m.epNotes)
	if m.evalNote != "" {
		setH++
	}
	if !c.envReady {
		setH++
	}
	planH := h - precH - setH
	if planH < 3 {
		setH, planH = h-precH, 0
	}

	left := panel(s, m.modelsTitle(), m.modelsView(s, lw-2, h-2), lw, h, m.pane == paneModels)
	right := panel(s, "Precisions", m.precisionsView(s, rw-2), rw, precH, m.pane == panePrecisions) + "\n" +
		panel(s, "Run", m.settingsView(c, rw-2), rw, setH, m.pane == paneSettings)
	if planH > 0 {
		right += "\n" + m.planPanel(c, rw, planH)
	}
	body := joinColumns(left, right)
	return body + "\n" + m.summaryView(c)
}

// planPanel previews the experiments Enter would queue.
func (m setupModel) planPanel(c viewCtx, w, h int) string {
	s := c.st
	cfg, err := m.planConfig()
	var lines []string
	title := "Plan"
	if err == nil {
		if plan, err := study.Plan(cfg); err == nil {
			title = fmt.Sprintf("Plan · %s", plural(len(plan), "run", "runs"))
			rows := h - 2
			for i, e := range plan {
				if i == rows-1 && len(plan) > rows && i > 0 {
					lines = append(lines, s.dim.Render(fmt.Sprintf(" … %d more", len(plan)-i)))
					break
				}
				ln := fmt.Sprintf(" %s %s b%d", displayModel(e.Model), e.Precision, e.Batch)
				if e.Repeat > 0 {
					ln += fmt.Sprintf(" #%d", e.Repeat+1)
				}
				if e.IsBaseline() {
					ln = s.dim.Render(ln)
				}
				if rows == 1 && len(plan) > 1 {
					ln += s.dim.Render(fmt.Sprintf(" … %d more", len(plan)-1))
				}
				lines = append(lines, ln)
				if len(lines) == rows {
					break
				}
			}
		}
	}
	if len(lines) == 0 {
		lines = append(lines, s.dim.Render(" select models to see the runs"))
	}
	return panel(s, title, strings.Join(lines, "\n"), w, h, false)
}

func (m setupModel) modelsTitle() string {
	n := len(m.selectedModels())
	t := fmt.Sprintf("Models · %d selected", n)
	if m.filter != "" && m.mode != inputFilter {
		t += fmt.Sprintf(" · filter %q", m.filter)
	}
	return t
}

func (m setupModel) modelsView(s *styles, w, h int) string {
	var lines []string
	switch m.mode {
	case inputFilter:
		lines = append(lines, s.key.Render("/")+" "+m.input.View())
	case inputPath:
		lines = append(lines, s.key.Render("path")+" "+m.input.View())
	default:
		hint := s.dim.Render(truncate("/ filter · a add .onnx path · space select · ✓ built", w))
		lines = append(lines, hint)
	}
	showFam, showRes := w >= 52, w >= 64
	nameW := w - 4 - 7 - 7 - 2
	if showFam {
		nameW -= 10
	}
	if showRes {
		nameW -= 5
	}
	nameW = max(8, min(32, nameW))
	hdr := "    " + padRight("model", nameW)
	if showFam {
		hdr += " " + padRight("family", 9)
	}
	hdr += " " + padLeft("params", 6) + " " + padLeft("GFLOPs", 6)
	if showRes {
		hdr += " " + padLeft("px", 4)
	}
	hdr += "  "
	lines = append(lines, s.tableHeader.Render(padRight(hdr, w)))
	vis := m.visible()
	switch {
	case m.loading && len(m.items) == 0:
		lines = append(lines, s.dim.Render("  loading the model catalog…"))
	case len(vis) == 0 && m.filter != "":
		lines = append(lines, s.dim.Render(fmt.Sprintf("  nothing matches %q (esc clears)", m.filter)))
	case len(vis) == 0:
		lines = append(lines, s.dim.Render("  no models: press a to add an .onnx file"))
	}
	if m.loadErr != "" {
		lines = append(lines, s.errorText.Render("  catalog: "+m.loadErr))
	}
	rows := h - len(lines) - 1 // the last line describes the cursor's model
	off := scrollOffset(m.offset, m.cursor, rows, len(vis))
	for n := off; n < len(vis) && n < off+rows; n++ {
		it := m.items[vis[n]]
		mark := " "
		if n == m.cursor && m.pane == paneModels {
			mark = "▸"
		}
		box := s.checkOff.Render("[ ]")
		if it.selected {
			box = s.checkOn.Render("[x]")
		}
		cached := s.dim.Render("?")
		switch {
		case it.info.Family == FamilyFile:
			cached = " "
		case it.cachedKnown && it.cached:
			cached = s.good.Render("✓")
		case it.cachedKnown:
			cached = s.dim.Render("·")
		}
		name := it.info.Name
		if it.info.Family == FamilyFile {
			name = displayModel(name)
		}
		ln := mark + box + " " + padRight(name, nameW-1)
		if showFam {
			ln += " " + padRight(it.info.Family, 9)
		}
		ln += " " + padLeft(fmtCount(it.info.Params), 6) + " " + padLeft(fmtGFLOPs(it.info.GFLOPs), 6)
		if showRes {
			res := ""
			if it.info.Resolution > 0 {
				res = strconv.Itoa(it.info.Resolution)
			}
			ln += " " + padLeft(res, 4)
		}
		ln += " " + cached
		if n == m.cursor && m.pane == paneModels {
			ln = s.selected.Render(padRight(ln, w))
		}
		lines = append(lines, ln)
	}
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	if m.cursor >= 0 && m.cursor < len(vis) {
		it := m.items[vis[m.cursor]].info
		desc := it.Description
		if it.Family == FamilyFile {
			desc = it.Name
		}
		lines = append(lines, s.dim.Render(truncate(desc, w)))
	}
	return strings.Join(lines, "\n")
}

func (m setupModel) precisionsView(s *styles, w int) string {
	var lines []string
	for i, p := range m.precs {
		mark := " "
		if i == m.precCur && m.pane == panePrecisions {
			mark = "▸"
		}
		box := s.checkOff.Render("[ ]")
		if p.on {
			box = s.checkOn.Render("[x]")
		}
		opt := p.options()
		switch {
		case m.mode == inputOptions && i == m.precCur:
			opt = m.input.View()
		case p.locked:
			opt = s.dim.Render(p.desc)
		case opt == "":
			opt = s.dim.Render("‹defaults›")
		default:
			opt = "‹" + opt + "›"
		}
		ln := mark + box + " " + padRight(p.kind, 12) + opt
		if i == m.precCur && m.pane == panePrecisions && m.mode != inputOptions {
			ln = s.selected.Render(padRight(ln, w))
		}
		lines = append(lines, ln)
	}
	hint := "space toggle · ←/→ options · o type"
	if m.pane == panePrecisions && !m.precs[m.precCur].locked {
		hint = m.precs[m.precCur].desc + " · ←/→ options · o type"
	}
	lines = append(lines, s.dim.Render(truncate(hint, w)))
	return strings.Join(lines, "\n")
}

func (m setupModel) settingsView(c viewCtx, w int) string {
	s := c.st
	names := [settingCount]string{"EP", "Batch", "Duration", "Threads", "Repeat", "Fusions", "Images", "Labels"}
	threads := "auto"
	if m.threads > 0 {
		threads = strconv.Itoa(m.threads)
	}
	fusions := "off"
	if m.fusions {
		fusions = "on"
	}
	evalDir, labels := "none", "folder names"
	if m.evalDir != "" {
		evalDir = m.evalDir
		if m.labels != "" {
			labels = m.labels
		}
	}
	values := [settingCount]string{m.eps[m.ep], m.batches, fmtDuration(m.duration), threads, strconv.Itoa(m.repeat), fusions, evalDir, labels}
	var lines []string
	for i := setting(0); i < settingCount; i++ {
		mark := " "
		sel := i == m.setCur && m.pane == paneSettings
		if sel {
			mark = "▸"
		}
		v := "‹" + truncate(values[i], max(4, w-12)) + "›"
		if sel && m.mode == inputSetting {
			v = m.input.View()
		}
		ln := mark + padRight(names[i], 9) + v
		if sel && m.mode != inputSetting {
			ln = s.selected.Render(padRight(ln, w))
		}
		lines = append(lines, ln)
	}
	if m.evalNote != "" {
		st := s.dim
		if m.evalErr {
			st = s.errorText
		}
		lines = append(lines, st.Render(truncate("images: "+m.evalNote, w)))
	}
	if !c.envReady {
		lines = append(lines, s.dim.Render("probing ONNX Runtime and GPUs…"))
	}
	for _, n := range m.epNotes {
		lines = append(lines, s.dim.Render(truncate(n, w)))
	}
	return strings.Join(lines, "\n")
}

func (m setupModel) summaryView(c viewCtx) string {
	s := c.st
	if m.err != "" {
		return padRight(s.errorText.Render("✗ "+m.err), m.width)
	}
	runs, est := m.planSize()
	if runs == 0 {
		return padRight(s.dim.Render(" pick models and precisions, then press enter"), m.width)
	}
	verb := "start"
	if c.running {
		verb = "queue"
	}
	txt := fmt.Sprintf(" %s × %s (fp32 baseline included) = %s · ~%s",
		plural(len(m.selectedModels()), "model", "models"), plural(len(m.selectedPrecisions()), "precision", "precisions"),
		plural(runs, "run", "runs"), fmtClock(est))
	return spread(txt, s.key.Render("enter")+" "+verb+" ", m.width)
}

// joinColumns places two blocks of lines side by side.
func joinColumns(left, right string) string {
	l, r := strings.Split(left, "\n"), strings.Split(right, "\n")
	lw := 0
	for _, x := range l {
		lw = max(lw, width(x))
	}
	n := max(len(l), len(r))
	out := make([]string, n)
	for i := range out {
		a, b := "", ""
		if i < len(l) {
			a = l[i]
		}
		if i < len(r) {
			b = r[i]
		}
		out[i] = padRight(a, lw) + b
	}
	return strings.Join(out, "\n")
}
