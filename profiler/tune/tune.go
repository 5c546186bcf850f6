// Package tune searches per-layer precision for the configuration that
// best meets an objective (throughput, latency or file size) within a
// fidelity budget (acc-drop<=0.5, cos>=0.999, …), measuring every
// candidate it considers: the uniform precisions the execution provider
// runs, then — when the cheapest of them breaks the budget — that
// precision with the most sensitive blocks (from profiler/sensitivity)
// restored to the cheapest precision that holds it, the number restored
// found by bisection, then each restored block tried back at the cheap
// precision in turn. Candidates are specs models/quant understands
// ("int4:int8=blocks.0+blocks.1", "int8:keep=head"), measured through a
// Measurer (the real one runs them as bench does, each in a worker
// process), so every figure is measured, never predicted.
package tune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/report"
	"github.com/quantscope/quantscope/profiler/study"
)

// Objective is what the search minimizes or maximizes.
type Objective string

// Objectives.
const (
	Throughput Objective = "throughput" // samples/s, higher is better
	Latency    Objective = "latency"    // p50 ms, lower is better
	Size       Objective = "size"       // file bytes, lower is better
)

// ParseObjective reads an objective name.
func ParseObjective(s string) (Objective, error) {
	switch o := Objective(strings.ToLower(strings.TrimSpace(s))); o {
	case Throughput, Latency, Size:
		return o, nil
	}
	return "", fmt.Errorf("objective %q: want throughput, latency or size", s)
}

// Measurement is what measuring one candidate gave.
type Measurement struct {
	Spec       string           `json:"spec"`
	Throughput float64          `json:"throughput"` // samples/s
	P50Ms      float64          `json:"p50_ms"`
	FileBytes  int64            `json:"file_bytes"`
	Fidelity   *fidelity.Result `json:"fidelity,omitempty"`
	Accuracy   *accuracy.Result `json:"accuracy,omitempty"`
	// Path is the candidate's model file.
	Path string `json:"path,omitempty"`
	// Traits are what the model declares (trained or synthetic weights,
	// logits or embeddings): the budget is judged as bench's gate judges
	// it (report.Gate.CheckFor). Zero: trained weights and logits.
	Traits study.ModelTraits `json:"traits,omitzero"`
}

// Measurer measures candidates. Baseline measures the FP32 model (first,
// once); Measure one precision spec against it.
type Measurer interface {
	Baseline(ctx context.Context) (Measurement, error)
	Measure(ctx context.Context, spec string) (Measurement, error)
}

// Ranker ranks a model's blocks by sensitivity at a precision kind, most
// sensitive first (profiler/sensitivity's ranking).
type Ranker func(ctx context.Context, kind quant.Kind) ([]string, error)

// Config is a search.
type Config struct {
	Budget    report.Gate
	Objective Objective
	// EP decides the menu of uniform precisions: cpu int8 and int4 (the
	// CPU EP has no fp16 kernels), others fp16, int8 and int4.
	EP string
	// Menu overrides the uniform precisions tried (specs without layer
	// choices).
	Menu []string
	// MaxCandidates bounds the candidates measured after the uniform ones
	// (default 12).
	MaxCandidates int
	// OnStep reports each step as it is decided and measured (may be nil).
	OnStep func(Step)
}

// Step is one candidate the search measured, and why.
type Step struct {
	N    int    `json:"n"`
	Spec string `json:"spec"`
	// Why the search tried it.
	Why string `json:"why"`
	// Measured is false while it runs (OnStep is called before and after).
	Measured bool        `json:"measured"`
	M        Measurement `json:"measurement"`
	// Pass says whether it holds the budget; Failed why not.
	Pass   bool     `json:"pass"`
	Failed []string `json:"failed,omitempty"`
	// Err is why it could not be measured.
	Err string `json:"error,omitempty"`
	// Best marks the best passing candidate so far.
	Best bool `json:"best,omitempty"`
}

// Result is a finished search.
type Result struct {
	Budget    string      `json:"budget"`
	Objective Objective   `json:"objective"`
	Baseline  Measurement `json:"baseline"`
	Steps     []Step      `json:"steps"`
	// Ranking is the sensitivity ranking the search used (most sensitive
	// first), if it needed one.
	Ranking []string `json:"ranking,omitempty"`
	// Winner is the best candidate that holds the budget (the FP32 model
	// itself when none does).
	Winner Step `json:"winner"`
	// Frontier are the measured candidates no other beats on both the
	// objective and fidelity, best objective first.
	Frontier []Step `json:"frontier"`
	// Notes explain the outcome.
	Notes []string `json:"notes,omitempty"`
}

// DefaultMenu is the uniform precisions tried on an execution provider.
func DefaultMenu(ep string) []string {
	if ep == "" || ep == "cpu" {
		return []string{"int8", "int4"}
	}
	return []string{"fp16", "int8", "int4"}
}

// cost is the objective as a number to minimize.
func (o Objective) cost(m Measurement) float64 {
	switch o {
	case Throughput:
		if m.Throughput <= 0 {
			return math.Inf(1)
		}
		return -m.Throughput
	case Latency:
		if m.P50Ms <= 0 {
			return math.Inf(1)
		}
		return m.P50Ms
	}
	if m.FileBytes <= 0 {
		return math.Inf(1)
	}
	return float64(m.FileBytes)
}

// Format writes a measurement's objective value.
func (o Objective) Format(m Measurement) string {
	switch o {
	case Throughput:
		return fmt.Sprintf("%.1f samples/s", m.Throughput)
	case Latency:
		return fmt.Sprintf("p50 %.2f ms", m.P50Ms)
	}
	return fmt.Sprintf("%.2f MB", float64(m.FileBytes)/1e6)
}

// search holds a running search.
type search struct {
	cfg      Config
	uniform  int // steps spent on uniform precisions
	meas     Measurer
	res      *Result
	best     int            // index of the best passing step, −1 none
	measured map[string]int // spec → step index
}

// Run searches. rank is called only when restoring layers is needed.
func Run(ctx context.Context, cfg Config, meas Measurer, rank Ranker) (*Result, error) {
	if cfg.Budget.IsZero() {
		return nil, errors.New("tune: no budget (e.g. acc-drop<=0.5 or cos>=0.999)")
	}
	if cfg.Objective == "" {
		cfg.Objective = Throughput
	}
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = 12
	}
	menu := cfg.Menu
	if len(menu) == 0 {
		menu = DefaultMenu(cfg.EP)
	}
	s := &search{cfg: cfg, meas: meas, best: -1, measured: map[string]int{},
		res: &Result{Budget: cfg.Budget.String(), Objective: cfg.Objective}}
	base, err := meas.Baseline(ctx)
	if err != nil {
		return nil, fmt.Errorf("tune: fp32 baseline: %w", err)
	}
	s.res.Baseline = base

	// 1. What each uniform precision buys here, and whether it holds.
	var uniform []int
	for _, spec := range menu {
		if i, err := s.try(ctx, spec, "uniform "+strings.SplitN(spec, ":", 2)[0]+": what the precision buys on this EP, and whether it holds the budget"); err != nil {
			return nil, err
		} else if i >= 0 {
			uniform = append(uniform, i)
		}
	}
	s.uniform = len(s.res.Steps)
	if len(uniform) == 0 {
		return nil, errors.New("tune: no uniform precision could be measured (see the steps' errors)")
	}
	slices.SortStableFunc(uniform, func(a, b int) int { return cmpF(s.cost(a), s.cost(b)) })
	cheap := uniform[0]
	cheapSpec := s.res.Steps[cheap].Spec
	if s.res.Steps[cheap].Pass {
		s.note(fmt.Sprintf("uniform %s is the cheapest precision measured (%s) and holds the budget: no layer needs restoring", cheapSpec, cfg.Objective.Format(s.res.Steps[cheap].M)))
		return s.finish(), nil
	}
	// 2. Restore the most sensitive blocks of the cheapest precision to
	// the cheapest precision that holds the budget (else float).
	restore, restoreSpec := -1, "fp32"
	for _, i := range uniform[1:] {
		if s.res.Steps[i].Pass {
			restore, restoreSpec = i, s.res.Steps[i].Spec
			break
		}
	}
	kind, choiceKey, ok := mixKey(cheapSpec, restoreSpec)
	if !ok {
		s.note(fmt.Sprintf("uniform %s breaks the budget and layers of it cannot be mixed with %s: the best uniform precision that holds it wins", cheapSpec, restoreSpec))
		return s.finish(), nil
	}
	if rank == nil {
		s.note("no sensitivity ranking: restoring layers skipped")
		return s.finish(), nil
	}
	ranking, err := rank(ctx, kind)
	if err != nil {
		return nil, fmt.Errorf("tune: sensitivity ranking: %w", err)
	}
	s.res.Ranking = ranking
	g := len(ranking)
	mixed := func(groups []string) string {
		if len(groups) == 0 {
			return cheapSpec
		}
		sorted := slices.Clone(groups)
		slices.Sort(sorted)
		return joinSpec(cheapSpec, choiceKey+"="+strings.Join(sorted, "+"))
	}
	// Bisect the number k of most sensitive blocks restored: k = 0 is the
	// failing cheap precision; k = g the restore precision throughout
	// (passing when it is a measured precision; as FP32 with keep=, the
	// model unconverted, which passes trivially).
	lo, hi := 0, g
	for hi-lo > 1 && s.budgetLeft() {
		mid := (lo + hi) / 2
		why := fmt.Sprintf("bisect over the %d blocks ranked by sensitivity (k=%d breaks the budget, k=%d holds it): the %d most sensitive at %s", g, lo, hi, mid, restoreSpec)
		i, err := s.try(ctx, mixed(ranking[:mid]), why)
		if err != nil {
			return nil, err
		}
		if i >= 0 && s.res.Steps[i].Pass {
			hi = mid
		} else {
			lo = mid
		}
	}
	if hi == g {
		if restore < 0 {
			s.note(fmt.Sprintf("restoring all but one block of %s to float still breaks the budget", cheapSpec))
		}
		return s.finish(), nil
	}
	// 3. Try each restored block back at the cheap precision, least
	// sensitive first: the ranking is measured on a small batch, the
	// budget on the full measurement.
	kept := slices.Clone(ranking[:hi])
	for j := len(kept) - 1; j >= 0 && s.budgetLeft(); j-- {
		without := slices.Delete(slices.Clone(kept), j, j+1)
		why := fmt.Sprintf("lower: %s back to %s (%d blocks restored hold the budget; is %s needed?)", kept[j], cheapSpec, len(kept), kept[j])
		i, err := s.try(ctx, mixed(without), why)
		if err != nil {
			return nil, err
		}
		if i >= 0 && s.res.Steps[i].Pass {
			kept = without
		}
	}
	return s.finish(), nil
}

// mixKey says how layers of cheap can be set to restore in one spec:
// the base kind for the sensitivity ranking and the option key.
func mixKey(cheap, restore string) (quant.Kind, string, bool) {
	c, err := quant.ParseSpec(cheap)
	if err != nil {
		return "", "", false
	}
	r, _ := quant.ParseSpec(restore)
	switch {
	case c.Kind != quant.Int4 && c.Kind != quant.Int8 && c.Kind != quant.Int8Static:
		return "", "", false
	case restore == "fp32" || r.Kind == quant.FP32:
		return c.Kind, "keep", true
	case c.Kind == quant.Int4 && r.Kind == quant.Int8:
		return c.Kind, "int8", true
	case c.Kind == quant.Int8 && r.Kind == quant.Int4:
		return c.Kind, "int4", true
	}
	// fp16 restores (CUDA) would need per-layer fp16: restore to float.
	return c.Kind, "keep", true
}

// joinSpec adds an option to a spec string.
func joinSpec(spec, opt string) string {
	if strings.Contains(spec, ":") {
		return spec + "," + opt
	}
	return spec + ":" + opt
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *search) cost(i int) float64 { return s.cfg.Objective.cost(s.res.Steps[i].M) }

// budgetLeft reports whether more candidates may be measured.
func (s *search) budgetLeft() bool {
	return len(s.res.Steps)-s.uniform < s.cfg.MaxCandidates
}

func (s *search) note(n string) { s.res.Notes = append(s.res.Notes, n) }

// try measures spec (once: a spec measured before is reused) and returns
// its step index, or −1 when it could not be measured.
func (s *search) try(ctx context.Context, spec, why string) (int, error) {
	if sp, err := quant.ParseSpec(spec); err == nil {
		spec = sp.String()
	}
	if i, ok := s.measured[spec]; ok {
		return i, nil
	}
	st := Step{N: len(s.res.Steps) + 1, Spec: spec, Why: why}
	if s.cfg.OnStep != nil {
		s.cfg.OnStep(st)
	}
	m, err := s.meas.Measure(ctx, spec)
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	st.Measured = true
	if err != nil {
		st.Err = err.Error()
		s.res.Steps = append(s.res.Steps, st)
		s.measured[spec] = -1
		if s.cfg.OnStep != nil {
			s.cfg.OnStep(st)
		}
		return -1, nil
	}
	st.M = m
	traits := m.Traits
	if traits.Weights == "" {
		traits = study.ModelTraits{Weights: study.WeightsTrained, Output: study.OutputLogits}
	}
	gr := s.cfg.Budget.CheckFor(m.Fidelity, m.Accuracy, traits)
	st.Pass, st.Failed = gr.Pass, gr.Failed
	i := len(s.res.Steps)
	s.res.Steps = append(s.res.Steps, st)
	s.measured[spec] = i
	if st.Pass && (s.best < 0 || s.cost(i) < s.cost(s.best)) {
		if s.best >= 0 {
			s.res.Steps[s.best].Best = false
		}
		s.best = i
		s.res.Steps[i].Best = true
	}
	if s.cfg.OnStep != nil {
		s.cfg.OnStep(s.res.Steps[i])
	}
	return i, nil
}

// finish picks the winner and the frontier.
func (s *search) finish() *Result {
	r := s.res
	if s.best >= 0 {
		r.Winner = r.Steps[s.best]
	} else {
		r.Winner = Step{Spec: "fp32", Why: "no quantized candidate holds the budget", M: r.Baseline, Pass: true}
		s.note("no quantized configuration held the budget: the FP32 model is the answer")
	}
	// Frontier: objective against fidelity loss (accuracy drop when the
	// budget is on accuracy, else 1 − cosine).
	loss := func(st Step) float64 {
		for _, c := range s.cfg.Budget.Clauses {
			if c.Metric == report.MetricAccDrop {
				if d, ok := st.M.Accuracy.Drop(); ok {
					return d
				}
			}
		}
		if st.M.Fidelity == nil {
			return math.Inf(1)
		}
		return 1 - st.M.Fidelity.CosineMean
	}
	var ok []Step
	for _, st := range r.Steps {
		if st.Err == "" && st.Measured {
			ok = append(ok, st)
		}
	}
	for _, a := range ok {
		dominated := false
		for _, b := range ok {
			ca, cb := s.cfg.Objective.cost(a.M), s.cfg.Objective.cost(b.M)
			if cb <= ca && loss(b) <= loss(a) && (cb < ca || loss(b) < loss(a)) {
				dominated = true
				break
			}
		}
		if !dominated {
			r.Frontier = append(r.Frontier, a)
		}
	}
	slices.SortStableFunc(r.Frontier, func(a, b Step) int { return cmpF(s.cfg.Objective.cost(a.M), s.cfg.Objective.cost(b.M)) })
	return r
}
