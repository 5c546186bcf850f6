package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/mattn/go-isatty"
	"github.com/muesli/termenv"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/tui"
)

// tuiOptions are the bare command's flags: what the interactive UI starts
// with.
type tuiOptions struct {
	out        string
	open       []string // --open: more results files to show
	models     []string
	precisions []string
	batches    []int
	threads    int
	duration   time.Duration
	optimize   bool
	demo       bool      // --demo: a short built-in study, started at once
	outSet     bool      // --out given (the demo writes elsewhere otherwise)
	eval       evalFlags // --eval-dir, --labels, --crop-pct, …
	// run replaces tui.Run in tests.
	run func(ctx context.Context, opts tui.Options, progOpts ...tea.ProgramOption) error
	// interactive replaces the terminal check (stdin and stdout) in tests.
	interactive func() bool
}

// addTUIFlags registers the interactive UI's flags on the root command.
func addTUIFlags(fs *pflag.FlagSet, o *tuiOptions) {
	fs.StringVar(&o.out, "out", "results.jsonl", "results file of the interactive study (JSON lines, appended; records already in it are shown)")
	fs.StringArrayVar(&o.open, "open", nil, "another results file to show beside --out (never written), repeatable: other machines' studies, a Job's shards; rows are grouped by host")
	fs.StringSliceVar(&o.models, "models", nil, "models to preselect on the setup screen (catalog names or .onnx paths)")
	fs.StringSliceVar(&o.precisions, "precisions", nil, "precisions to preselect besides the fp32 baseline (default int8)")
	fs.IntSliceVar(&o.batches, "batch", []int{1}, "batch sizes to start with")
	fs.IntVar(&o.threads, "threads", 0, "intra-op threads to start with (0 = one per physical core)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "timed duration of each run")
	fs.BoolVar(&o.optimize, "optimize", optimize.DefaultEnabled, "start with transformer fusions on (models/optimize; --optimize=false runs the graphs as built)")
	o.eval.register(fs)
	fs.BoolVar(&o.demo, "demo", false, "a first look on any machine: a short study of the two smallest catalog models, fp32 and int8 for 3 s each, started at once (results in the user cache dir unless --out)")
}

// demoDuration is each demo run's timed phase.
const demoDuration = 3 * time.Second

// demoModels are the two smallest catalog models (by parameters).
func demoModels() []string {
	specs := slices.Clone(zoo.Catalog())
	slices.SortStableFunc(specs, func(a, b zoo.Spec) int { return cmp.Compare(a.Params, b.Params) })
	var out []string
	for _, s := range specs[:min(2, len(specs))] {
		out = append(out, s.Name)
	}
	return out
}

// applyDemo turns the flags into the demo's: its models, int8 against
// fp32, 3 s runs, batch 1, and (without --out) a fresh results file in
// the user cache dir, so the demo never mixes into the user's results.
func applyDemo(o tuiOptions) (tuiOptions, error) {
	o.models, o.precisions, o.duration, o.batches = demoModels(), []string{"int8"}, demoDuration, []int{1}
	if o.outSet {
		return o, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return o, fmt.Errorf("demo: %w (pass --out)", err)
	}
	dir = filepath.Join(dir, "quantscope", "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return o, fmt.Errorf("demo: %w (pass --out)", err)
	}
	o.out = filepath.Join(dir, "results.jsonl")
	if err := os.Remove(o.out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return o, fmt.Errorf("demo: %w (pass --out)", err)
	}
	return o, nil
}

// runRoot is the bare `quantscope`: the interactive UI on a terminal, the
// doctor checklist (with a one-line note) when stdout is not one.
func runRoot(cmd *cobra.Command, g *globalOptions, o tuiOptions) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	interactive := o.interactive
	if interactive == nil {
		interactive = func() bool { return isTerminal(g.stdout) && isatty.IsTerminal(os.Stdin.Fd()) }
	}
	if !interactive() {
		fmt.Fprintln(g.stderr, "quantscope: not a terminal, so no interactive UI; here is `quantscope doctor` (see `quantscope --help` for the headless commands)")
		return runDoctor(ctx, g, doctorOptions{})
	}
	return runTUI(ctx, g, o)
}

// studyOptions are the interactive study's options from the flags: what
// the local UI and serve share.
func studyOptions(g *globalOptions, o tuiOptions) tui.Options {
	return tui.Options{
		Catalog:    zooCatalog{},
		Preparer:   study.NewPreparer(),
		Probe:      func(context.Context) tui.Environment { return probeEnvironment(g.ortLib) },
		Out:        o.out,
		Open:       o.open,
		ORTLib:     g.ortLib,
		Duration:   o.duration,
		Batches:    o.batches,
		Threads:    o.threads,
		Models:     o.models,
		Precisions: o.precisions,
		Optimize:   o.optimize,
		EvalDir:    o.eval.dir,
		Labels:     o.eval.labels,
	}
}

// runTUI starts the interactive UI and maps how it ended to an exit code.
func runTUI(ctx context.Context, g *globalOptions, o tuiOptions) error {
	// A dropped SSH connection hangs the terminal up: stop the study and
	// reap its worker as for Ctrl-C rather than dying and orphaning it.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	if err := o.eval.validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if o.demo {
		var err error
		if o, err = applyDemo(o); err != nil {
			return err
		}
	}
	opts := studyOptions(g, o)
	opts.Doctor = tuiDoctor(g.ortLib, opts.Preparer)
	var err error
	if opts.EvalOverrides, err = o.eval.overrides(); err != nil {
		return &exitError{code: 2, err: err}
	}
	opts.AutoStart = o.demo
	// The local UI searches and ranks layers too (not serve: a search
	// measures speed on the machine every session shares).
	opts.Tune, opts.Sensitivity = tuiTune(g, o.out), tuiSensitivity(g)
	// quantscope serve running a study here: warn, and ask before starting.
	opts.Busy = serveBusy
	return runUI(ctx, g, opts, o.run, "interactive UI")
}

// runUI runs the terminal UI on g's stdout in its colour profile (none
// under NO_COLOR, plain ASCII on a dumb terminal) through run (tui.Run when
// nil). A signal that ended it is exit status 130; the study it ran was
// stopped and its results kept.
func runUI(ctx context.Context, g *globalOptions, opts tui.Options, run func(context.Context, tui.Options, ...tea.ProgramOption) error, what string) error {
	opts.Profile = termenv.NewOutput(g.stdout).ColorProfile()
	opts.NoColor = os.Getenv("NO_COLOR") != ""
	if os.Getenv("TERM") == "dumb" {
		opts.Profile = termenv.Ascii
	}
	if run == nil {
		run = tui.Run
	}
	err := run(ctx, opts, tea.WithOutput(g.stdout))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tea.ErrProgramKilled), errors.Is(err, tea.ErrInterrupted):
		return &exitError{code: 130}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// probeEnvironment runs doctor's checks for the header and the EP choice.
func probeEnvironment(ortLib string) tui.Environment {
	return probeEnvironmentWith(ortLib, doctorSystem{}.withDefaults())
}

// probeEnvironmentWith is probeEnvironment on the given system: the EPs
// that can run, cuda the default when ready, else why not and the command
// that adds it.
func probeEnvironmentWith(ortLib string, sys doctorSystem) tui.Environment {
	rep := gatherDoctor(ortLib, sys)
	env := tui.Environment{
		Host:      rep.Host,
		GPUs:      rep.GPUs,
		GPUStatus: rep.GPUStatus,
		ORT:       rep.ORT.Info,
	}
	if rep.OK {
		env.EPs = append(env.EPs, "cpu")
		env.DefaultEP = "cpu"
	}
	if rep.CUDAReady {
		// A GPU that CUDA can run on is what the user came for.
		env.EPs = append(env.EPs, "cuda")
		env.DefaultEP = "cuda"
	} else if b := cudaBlockers(rep); rep.OK && len(b) > 0 {
		// Each blocker names the command that removes it (make setup-cuda
		// when a GPU is there without the plugin).
		env.EPNotes = append(env.EPNotes, "cuda: "+strings.Join(b, "; "))
	}
	env.StudyHost = study.ReadHost(rep.ORT.Info, nil)
	if len(rep.CUDA.LibraryDirs) > 0 {
		env.Worker.Env = []string{"LD_LIBRARY_PATH=" + rep.CUDA.LDLibraryPath(os.Getenv("LD_LIBRARY_PATH"))}
	}
	return env
}

// zooCatalog offers the built-in models and the .onnx files of the working
// directory to the setup screen.
type zooCatalog struct{}

// Models implements tui.CatalogSource.
func (zooCatalog) Models(ctx context.Context) ([]tui.ModelInfo, error) {
	var out []tui.ModelInfo
	for _, s := range zoo.Catalog() {
		out = append(out, tui.ModelInfo{
			Name: s.Name, Family: string(s.Family), Description: s.Description,
			Params: s.Params, GFLOPs: s.GFLOPs, Resolution: s.Resolution,
		})
	}
	files, _ := filepath.Glob("*.onnx")
	for _, f := range files {
		out = append(out, tui.ModelInfo{Name: f, Family: tui.FamilyFile, Description: "model file in the working directory"})
	}
	return out, ctx.Err()
}

// Cached implements tui.CatalogSource.
func (zooCatalog) Cached(ctx context.Context, names []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if s, ok := zoo.Lookup(n); ok {
			_, out[n] = zoo.Cached(s)
		}
	}
	return out, nil
}
