package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/telemetry"
	"github.com/quantscope/quantscope/profiler/worker"
)

// FamilyFile is ModelInfo.Family for a model file (a path rather than a
// catalog name); the catalog's own families come from models/zoo.
const FamilyFile = "file"

// ModelInfo is one model the setup screen offers.
type ModelInfo struct {
	Name        string // catalog name, or the file path of an imported model
	Family      string // "ViT", "DeiT", …; FamilyFile for a model file
	Description string
	Params      int64   // 0 when unknown
	GFLOPs      float64 // per sample, 0 when unknown
	Resolution  int     // input side in pixels, 0 when unknown
}

// CatalogSource lists the models the user can pick. Both methods run inside
// tea.Cmds, never on the UI goroutine, so they may be slow.
type CatalogSource interface {
	// Models lists the catalog (and any imported model files) in display order.
	Models(ctx context.Context) ([]ModelInfo, error)
	// Cached reports which of the named models are already built on disk.
	Cached(ctx context.Context, names []string) (map[string]bool, error)
}

// Environment is what the header shows and the setup screen offers:
// the host, its GPUs, ONNX Runtime and the usable execution providers.
type Environment struct {
	Host      telemetry.HostInfo
	GPUs      []telemetry.GPUInfo
	GPUStatus telemetry.GPUStatus
	ORT       ort.Info
	// EPs are the execution providers a study may use here, in the
	// spelling of study.Experiment.EP ("cpu", "cuda", …). Doctor decides.
	EPs []string
	// EPNotes says why an execution provider is missing, and the command
	// that adds it (e.g. "cuda: CUDA plugin not found: run `make
	// setup-cuda`"), shown under the EP choice.
	EPNotes []string
	// DefaultEP is the EP the setup screen starts on unless Options.EP
	// says otherwise: "cuda" when doctor finds CUDA ready, else "cpu".
	DefaultEP string
	// StudyHost fingerprints the machine for the results records.
	StudyHost study.Host
	// Worker carries what workers need from the environment (LD_LIBRARY_PATH
	// for the CUDA libraries).
	Worker worker.Options
}

// RunFunc runs a study plan; study.Run is the real one. It is called from a
// tea.Cmd goroutine and must report progress through cfg.OnUpdate and stop
// promptly when ctx is canceled.
type RunFunc func(ctx context.Context, plan []study.Experiment, cfg study.RunConfig) ([]study.Record, error)

// Options are the application's dependencies and settings.
type Options struct {
	// Catalog lists the models (nil: only typed paths).
	Catalog CatalogSource
	// Preparer builds and quantizes model files for the study.
	Preparer study.Preparer
	// Probe gathers the Environment (run once, in a tea.Cmd, at start).
	Probe func(ctx context.Context) Environment
	// Run runs a plan (default study.Run).
	Run RunFunc
	// Tune runs a precision search for the Tune screen (nil: no Tune
	// screen).
	Tune TuneFunc
	// Sensitivity ranks a variant's layers for the run detail (nil: not
	// offered).
	Sensitivity SensitivityFunc
	// Out is the results file (JSON lines, appended). Records already in it
	// are shown at start and new runs extend it.
	Out string
	// Open are more results files shown beside Out's records and never
	// written (--open): other machines' studies, the shards of a Job.
	// Rows are grouped by host.
	Open []string
	// ORTLib is --ort-lib, passed on to workers and to the reproduce command.
	ORTLib string
	// Worker are the base worker options (executable, grace period).
	Worker worker.Options
	// Timeout bounds one experiment (0: the study default).
	Timeout time.Duration
	// EvalDir and Labels preset the setup screen's labelled image folder
	// for accuracy (quantscope --eval-dir, --labels); EvalOverrides are the
	// preprocessing flags (--crop-pct, --interpolation, --mean, --std).
	EvalDir, Labels string
	EvalOverrides   evaluate.Overrides
	// Duration, Batches, Threads, Precisions and EP are the setup
	// screen's initial values (defaults 10s, [1], 0, ["int8"], and for EP
	// the environment's DefaultEP, else "cpu").
	Duration   time.Duration
	Batches    []int
	Threads    int
	Precisions []string
	EP         string
	// Models are preselected on the setup screen (names or paths).
	Models []string
	// Optimize is the setup screen's initial Fusions setting: run models
	// as models/optimize fuses them.
	Optimize bool
	// Doctor runs the hardware check of the Doctor screen (nil: no Doctor
	// screen).
	Doctor DoctorFunc

	// Profile is the terminal's colour profile; termenv.Ascii draws no
	// colours or attributes at all.
	Profile termenv.Profile
	// NoColor (NO_COLOR) keeps bold, faint and reverse but drops colours.
	NoColor bool
	// Now is the clock (default time.Now); tests pin it.
	Now func() time.Time
	// TickInterval is the redraw tick while a study runs (default 100 ms).
	TickInterval time.Duration
	// NoSpinner draws a still activity marker instead of a spinner (stable
	// frames for golden tests).
	NoSpinner bool
	// Renderer draws for the terminal (nil: one for Profile); serve gives
	// each SSH session its own.
	Renderer *lipgloss.Renderer

	// Shared makes the hub one study for many users (serve): one program
	// holds control and the others watch and may ask for it; a program
	// that quits leaves the study running.
	Shared bool
	// OnStatus is told when the hub's Status changes (serve keeps its lock
	// file up to date with it). Called from the hub's goroutines.
	OnStatus func(Status)
	// Busy says what study another quantscope (serve) runs on this
	// machine, "" when none: the program warns at start and asks before
	// starting one of its own.
	Busy func() string
	// Replay plays a recorded study instead of running one.
	Replay *Replay
	// AutoStart starts the setup screen's study (Models × Precisions) as
	// soon as the catalog and the environment are in: the demo.
	AutoStart bool
}

func (o Options) withDefaults() Options {
	if o.Run == nil {
		o.Run = study.Run
	}
	if o.Out == "" {
		o.Out = "results.jsonl"
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if len(o.Batches) == 0 {
		o.Batches = []int{1}
	}
	if o.Precisions == nil {
		o.Precisions = []string{"int8"}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TickInterval <= 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	return o
}
