package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/charmbracelet/lipgloss"
	"github.com/mattn/go-isatty"
	"github.com/muesli/termenv"
	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/internal/bytefmt"
	"github.com/quantscope/quantscope/profiler/hwbench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// doctorOptions are the flags of `quantscope doctor` and the machine it
// inspects.
type doctorOptions struct {
	json  bool               // print one JSON object instead of the checklist
	sys   doctorSystem       // zero value: this process's machine
	bench doctorBenchOptions // --bench and its flags (doctor_bench.go)
}

// doctorSystem is where doctor gets its facts. Each nil field means the real
// source; tests substitute fixtures.
type doctorSystem struct {
	probe  func(explicit string) ort.Info
	host   func() telemetry.HostInfo
	nvml   func() nvml.Interface
	cuda   func(ortLibDir string) ort.CUDAInfo
	getenv func(string) string
	isTTY  func(io.Writer) bool
}

func (s doctorSystem) withDefaults() doctorSystem {
	if s.probe == nil {
		s.probe = ort.Probe
	}
	if s.host == nil {
		s.host = telemetry.ReadHostInfo
	}
	if s.nvml == nil {
		s.nvml = func() nvml.Interface { return nvml.New() }
	}
	if s.cuda == nil {
		s.cuda = func(ortLibDir string) ort.CUDAInfo {
			search := ort.SystemCUDASearch()
			search.ORTLibDir = ortLibDir
			return ort.FindCUDA(search)
		}
	}
	if s.getenv == nil {
		s.getenv = os.Getenv
	}
	if s.isTTY == nil {
		s.isTTY = isTerminal
	}
	return s
}

// doctorReport is everything doctor found; --json prints it as is.
type doctorReport struct {
	// OK is true when ONNX Runtime loaded: doctor then exits 0.
	OK bool `json:"ok"`
	// CUDAReady is true when a CUDA session can be expected to work: ONNX
	// Runtime loaded, an NVIDIA GPU answers, its driver supports CUDA 13 (or
	// says nothing), and either the ONNX Runtime build has the CUDA provider
	// or the CUDA plugin and its required libraries were found.
	CUDAReady bool `json:"cuda_ready"`
	// NeedsCUDAPlugin is true when an NVIDIA GPU answers but neither the
	// ONNX Runtime build nor a CUDA plugin can run on it: `make run` then
	// installs the plugin (`make setup-cuda`).
	NeedsCUDAPlugin bool                `json:"needs_cuda_plugin"`
	Host            telemetry.HostInfo  `json:"host"`
	ORT             doctorORT           `json:"ort"`
	GPUStatus       telemetry.GPUStatus `json:"gpu_status"`
	GPUs            []telemetry.GPUInfo `json:"gpus"`
	CUDA            ort.CUDAInfo        `json:"cuda"`
	// Bench is what --bench measured (doctor_bench.go); absent without it.
	Bench *hwbench.Report `json:"bench,omitempty"`
}

// doctorORT is ort.Info with its error as text for JSON.
type doctorORT struct {
	ort.Info
	Error string `json:"error,omitempty"`
}

func newDoctorCmd(g *globalOptions) *cobra.Command {
	var opts doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine: CPU features, memory, ONNX Runtime, NVIDIA GPUs, CUDA libraries",
		Long: `doctor is the quick sanity check to run first on a new machine. It reports
the CPU and the instruction-set features that decide quantized speed, memory,
the ONNX Runtime library and its execution providers, every NVIDIA GPU (through
NVML), and whether the CUDA plugin and the CUDA 13 libraries it needs can be
found.

It exits 0 when ONNX Runtime loads and 1 when it does not. Colors are used only
on a terminal and never when NO_COLOR is set.`,
		Example: `  quantscope doctor
  quantscope doctor --json | jq .gpu_status
  quantscope doctor --bench --min-percent 50
  quantscope doctor --ort-lib /opt/onnxruntime/lib/libonnxruntime.so`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print one JSON object (host, ort, gpu_status, gpus, cuda) instead of the checklist")
	addDoctorBenchFlags(cmd, &opts.bench)
	return cmd
}

// runDoctor gathers the report, prints it, and returns an *exitError with
// code 1 when ONNX Runtime did not load.
func runDoctor(ctx context.Context, g *globalOptions, opts doctorOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	sys := opts.sys.withDefaults()
	rep := gatherDoctor(g.ortLib, sys)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	if opts.bench.enabled {
		return runDoctorBench(ctx, g, opts, sys, rep)
	}

	if opts.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write doctor report: %w", err)
		}
	} else {
		color := useColor(g.stdout, sys.getenv, sys.isTTY)
		st := newDoctorStyles(doctorRenderer(g.stdout, color))
		if _, err := io.WriteString(g.stdout, renderDoctor(rep, st)); err != nil {
			return fmt.Errorf("write doctor report: %w", err)
		}
	}

	if !rep.OK {
		if opts.json {
			// Stdout holds the JSON; say why on stderr too.
			err := rep.ORT.Err
			if err == nil {
				err = errors.New("no library loaded")
			}
			return &exitError{code: 1, err: fmt.Errorf("ONNX Runtime did not load: %w", err)}
		}
		// The checklist already shows the error, what was tried and the fix.
		return &exitError{code: 1}
	}
	return nil
}

// gatherDoctor collects the report from sys.
func gatherDoctor(ortLib string, sys doctorSystem) doctorReport {
	var rep doctorReport
	info := sys.probe(ortLib)
	rep.ORT = doctorORT{Info: info}
	if info.Err != nil {
		rep.ORT.Error = info.Err.Error()
	}
	rep.OK = info.OK()
	rep.Host = sys.host()
	rep.GPUs, rep.GPUStatus = telemetry.ReadGPUs(sys.nvml())
	if rep.GPUs == nil {
		rep.GPUs = []telemetry.GPUInfo{}
	}
	ortDir := ""
	if info.LibraryPath != "" {
		if abs, err := filepath.Abs(info.LibraryPath); err == nil {
			ortDir = filepath.Dir(abs)
		}
	}
	rep.CUDA = sys.cuda(ortDir)
	rep.CUDAReady = len(cudaBlockers(rep)) == 0
	rep.NeedsCUDAPlugin = rep.OK && rep.GPUStatus.Available() && !rep.ORT.HasProvider(ort.CUDAProvider) && rep.CUDA.PluginPath == ""
	return rep
}

// cudaBlockers lists why CUDA profiling cannot run; empty when it can. The
// GPU and its driver come from NVML; whether ONNX Runtime can open a CUDA
// session is ort.ResolveEP's answer, the one bench and the worker get.
func cudaBlockers(rep doctorReport) []string {
	var out []string
	if !rep.OK {
		out = append(out, "ONNX Runtime did not load")
	}
	if !rep.GPUStatus.Available() {
		return append(out, "no NVIDIA GPU")
	}
	if m := rep.GPUStatus.CUDADriverMajor(); m != 0 && m < ort.PluginCUDAMajor {
		out = append(out, fmt.Sprintf("the driver supports CUDA %s, the plugin needs %d.0", rep.GPUStatus.CUDADriverVersion, ort.PluginCUDAMajor))
	}
	if _, err := ort.ResolveEP("cuda", rep.ORT.Info, rep.CUDA); err != nil {
		var u *ort.CUDAUnavailableError
		if errors.As(err, &u) {
			return append(out, u.Blockers...)
		}
		return append(out, err.Error())
	}
	return out
}

// useColor decides whether the checklist is colored: only on a terminal,
// never with NO_COLOR set or TERM=dumb.
func useColor(w io.Writer, getenv func(string) string, isTTY func(io.Writer) bool) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	return isTTY(w)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// doctorRenderer returns a lipgloss renderer for w: the 16 basic ANSI colors
// when color is on (all the checklist uses), plain text otherwise.
func doctorRenderer(w io.Writer, color bool) *lipgloss.Renderer {
	r := lipgloss.NewRenderer(w)
	if color {
		r.SetColorProfile(termenv.ANSI)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return r
}

// doctorStyles are the checklist's styles.
type doctorStyles struct {
	title, heading, ok, fail, warn, dim lipgloss.Style
}

func newDoctorStyles(r *lipgloss.Renderer) doctorStyles {
	return doctorStyles{
		title:   r.NewStyle().Bold(true),
		heading: r.NewStyle().Bold(true).Foreground(lipgloss.Color("4")),
		ok:      r.NewStyle().Foreground(lipgloss.Color("2")),
		fail:    r.NewStyle().Foreground(lipgloss.Color("1")),
		warn:    r.NewStyle().Foreground(lipgloss.Color("3")),
		dim:     r.NewStyle().Faint(true),
	}
}

// doctorMark is the status of one checklist line.
type doctorMark int

const (
	markOK   doctorMark = iota // ✓ green
	markFail                   // ✗ red
	markWarn                   // ! yellow
	markInfo                   // · neutral
)

// doctorLabelWidth is the width of the label column.
const doctorLabelWidth = 13

// checklist builds the rendered text line by line.
type checklist struct {
	b  strings.Builder
	st doctorStyles
}

func (c *checklist) mark(m doctorMark) string {
	switch m {
	case markOK:
		return c.st.ok.Render("✓")
	case markFail:
		return c.st.fail.Render("✗")
	case markWarn:
		return c.st.warn.Render("!")
	default:
		return c.st.dim.Render("·")
	}
}

func (c *checklist) heading(s string) {
	c.b.WriteString("\n" + c.st.heading.Render(s) + "\n")
}

// item writes "  ✓ label         value".
func (c *checklist) item(m doctorMark, label, value string) {
	fmt.Fprintf(&c.b, "  %s %-*s %s\n", c.mark(m), doctorLabelWidth, label, value)
}

// line writes a mark and free text, without a label column.
func (c *checklist) line(m doctorMark, text string) {
	fmt.Fprintf(&c.b, "  %s %s\n", c.mark(m), text)
}

// more writes a continuation line aligned with the value column.
func (c *checklist) more(value string) {
	fmt.Fprintf(&c.b, "    %-*s %s\n", doctorLabelWidth, "", value)
}

// renderDoctor renders the report as the checklist. It is pure: the styles
// decide whether it carries ANSI codes.
func renderDoctor(rep doctorReport, st doctorStyles) string {
	c := &checklist{st: st}
	c.b.WriteString(st.title.Render("quantscope doctor") + "\n")
	renderHost(c, rep.Host)
	renderORT(c, rep.ORT)
	renderGPUs(c, rep.GPUStatus, rep.GPUs)
	renderCUDA(c, rep)

	c.b.WriteString("\n")
	blockers := cudaBlockers(rep)
	switch {
	case !rep.OK:
		c.line(markFail, st.fail.Render("Not ready: ONNX Runtime did not load (see the fix above)"))
	case len(blockers) == 0:
		c.line(markOK, "Ready: CPU and CUDA profiling")
	case !rep.GPUStatus.Available():
		c.line(markOK, "Ready for CPU profiling (no NVIDIA GPU)")
	default:
		c.line(markWarn, "Ready for CPU profiling; CUDA not ready: "+strings.Join(blockers, "; "))
	}
	return c.b.String()
}

func renderHost(c *checklist, h telemetry.HostInfo) {
	c.heading("Host")
	sys := []string{}
	if h.Hostname != "" {
		sys = append(sys, h.Hostname)
	}
	sys = append(sys, h.OS+"/"+h.Arch)
	if h.Kernel != "" {
		sys = append(sys, "kernel "+h.Kernel)
	}
	c.item(markInfo, "System", strings.Join(sys, " · "))

	cores := fmt.Sprintf("%d logical cores", h.CPU.LogicalCores)
	if h.CPU.PhysicalCores > 0 {
		cores = fmt.Sprintf("%d physical / %d logical cores", h.CPU.PhysicalCores, h.CPU.LogicalCores)
	}
	if h.CPU.UsableCores > 0 && h.CPU.UsableCores < h.CPU.LogicalCores {
		cores += fmt.Sprintf(" (%d usable by this process)", h.CPU.UsableCores)
	}
	c.item(markOK, "CPU", h.CPU.Model+" · "+cores)

	if len(h.CPU.Features) > 0 {
		var tokens []string
		for _, f := range h.CPU.Features {
			m := markFail
			if f.Present {
				m = markOK
			}
			tokens = append(tokens, c.mark(m)+" "+f.Name)
		}
		for i, ln := range wrapTokens(tokens, 5) {
			if i == 0 {
				c.item(markInfo, "ISA", ln)
			} else {
				c.more(ln)
			}
		}
	}
	int8Mark := markWarn
	if h.CPU.INT8.Fast {
		int8Mark = markOK
	}
	c.item(int8Mark, "INT8", strings.TrimPrefix(h.CPU.INT8.Summary, "INT8: "))
	fp16Mark := markInfo
	if h.CPU.FP16.Fast {
		fp16Mark = markOK
	}
	c.item(fp16Mark, "FP16", strings.TrimPrefix(h.CPU.FP16.Summary, "FP16: "))

	mem := fmt.Sprintf("%s total · %s available", bytefmt.Format(int64(h.Memory.TotalBytes)), bytefmt.Format(int64(h.Memory.AvailableBytes)))
	if h.Memory.LimitBytes > 0 {
		mem += " · cgroup limit " + bytefmt.Format(int64(h.Memory.LimitBytes))
	}
	memMark := markOK
	if h.Memory.TotalBytes == 0 {
		memMark, mem = markWarn, "unknown"
	}
	c.item(memMark, "Memory", mem)
	for _, w := range h.Warnings {
		c.item(markWarn, "Note", w)
	}
}

func renderORT(c *checklist, o doctorORT) {
	c.heading("ONNX Runtime")
	if !o.OK() {
		c.item(markFail, "Library", c.st.fail.Render("not loaded"))
		text := o.Error
		if text == "" {
			text = "no library loaded"
		}
		for _, ln := range strings.Split(text, "\n") {
			c.more(ln)
		}
		if !strings.Contains(text, "fix:") {
			c.more("fix: run `make setup` (installs ONNX Runtime into .ort/) or pass --ort-lib PATH")
		}
		return
	}
	c.item(markOK, "Library", o.LibraryPath)
	version := o.Version
	if version == "" {
		version = "unknown"
	}
	c.item(markOK, "Version", version)
	if len(o.Providers) == 0 {
		c.item(markWarn, "Providers", "none reported")
	} else {
		c.item(markOK, "Providers", strings.Join(o.Providers, ", "))
	}
}

func renderGPUs(c *checklist, st telemetry.GPUStatus, gpus []telemetry.GPUInfo) {
	c.heading("GPU")
	if !st.Available() {
		c.line(markFail, "no NVIDIA GPU: "+st.Reason)
		return
	}
	driver := "driver " + orNA(st.DriverVersion)
	if st.CUDADriverVersion != "" {
		driver += " · CUDA " + st.CUDADriverVersion + " (driver API)"
	}
	driverMark := markOK
	if m := st.CUDADriverMajor(); m != 0 && m < ort.PluginCUDAMajor {
		driverMark = markWarn
	}
	c.item(driverMark, "Driver", driver)
	if driverMark == markWarn {
		c.more(fmt.Sprintf("the CUDA plugin needs CUDA %d.0: upgrade the NVIDIA driver to 580 or newer", ort.PluginCUDAMajor))
	}
	for _, w := range st.Warnings {
		c.more("! " + w)
	}
	for _, g := range gpus {
		label := fmt.Sprintf("GPU %d", g.Index)
		if g.Error != "" {
			c.item(markFail, label, g.Error)
			continue
		}
		ident := orNA(g.Name)
		if g.ComputeCapability != "" {
			ident += " · compute " + g.ComputeCapability
		}
		c.item(markOK, label, ident)

		mem := "memory n/a"
		if g.MemoryTotalBytes != nil && g.MemoryUsedBytes != nil {
			mem = fmt.Sprintf("memory %s used of %s", bytefmt.Format(int64(*g.MemoryUsedBytes)), bytefmt.Format(int64(*g.MemoryTotalBytes)))
		}
		temp := "temperature n/a"
		if g.TemperatureC != nil {
			temp = fmt.Sprintf("%d °C", *g.TemperatureC)
		}
		power := "power " + formatWatts(g.PowerDrawW)
		if g.PowerLimitW != nil {
			power += " of " + formatWatts(g.PowerLimitW)
		} else {
			power += " (limit n/a)"
		}
		c.more(strings.Join([]string{mem, temp, power}, " · "))
		for _, w := range g.Warnings {
			c.more("! " + w)
		}
	}
}

func renderCUDA(c *checklist, rep doctorReport) {
	c.heading("CUDA")
	cuda := rep.CUDA
	if !rep.GPUStatus.Available() {
		// Without a GPU the CUDA files are informational only.
		plugin := "not found (not needed without an NVIDIA GPU)"
		if cuda.PluginPath != "" {
			plugin = cuda.PluginPath
		}
		c.item(markInfo, "Plugin", plugin)
		var found, missing []string
		for _, l := range cuda.Libraries {
			if l.Path != "" {
				found = append(found, l.Name)
			} else {
				missing = append(missing, l.Name)
			}
		}
		switch {
		case len(found) == 0:
			c.item(markInfo, "Libraries", "none of the CUDA 13 libraries found")
		case len(missing) == 0:
			c.item(markInfo, "Libraries", "all found: "+strings.Join(found, ", "))
		default:
			c.item(markInfo, "Libraries", "found "+strings.Join(found, ", ")+"; missing "+strings.Join(missing, ", "))
		}
		return
	}

	builtin := rep.ORT.HasProvider(ort.CUDAProvider)
	switch {
	case cuda.PluginPath != "":
		c.item(markOK, "Plugin", cuda.PluginPath)
	case builtin:
		c.item(markOK, "Plugin", "not needed: this ONNX Runtime build has "+ort.CUDAProvider)
	default:
		c.item(markFail, "Plugin", ort.CUDAPluginFile+" not found")
		if len(cuda.PluginTried) > 0 {
			c.more("tried: " + strings.Join(cuda.PluginTried, ", "))
		}
		c.more("fix: run `make setup-cuda` (installs it into .ort/cuda/) or set " + ort.EnvCUDAPlugin + "=PATH")
	}
	if !builtin {
		switch {
		case cuda.BridgePath != "":
			c.item(markOK, "Bridge", cuda.BridgePath)
		case cuda.BridgeWant == "":
			c.item(markFail, "Bridge", ort.BridgeFile+" not checked: ONNX Runtime did not load")
		default:
			c.item(markFail, "Bridge", ort.BridgeFile+" missing beside "+filepath.Base(filepath.Dir(cuda.BridgeWant))+"/libonnxruntime.so")
			c.more("the CUDA plugin is ONNX Runtime's shared-library provider: it needs " + cuda.BridgeWant)
			c.more("fix: run `make setup` (installs it beside libonnxruntime.so), or copy it from the same ONNX Runtime release")
		}
	}
	for _, l := range cuda.Libraries {
		if l.Path != "" {
			c.item(markOK, l.Purpose, l.Path+" (via "+l.Source+")")
			continue
		}
		c.item(markFail, l.Purpose, l.Name+" not found")
		for i, cmd := range l.Install {
			if strings.HasPrefix(cmd, "apt-get ") {
				cmd += " (NVIDIA's CUDA apt repository)"
			}
			if i == 0 {
				c.more("install: " + cmd)
			} else {
				c.more("     or: " + cmd)
			}
		}
	}
	if len(cuda.Missing()) > 0 {
		c.more("searched: " + describeSearch(cuda.Searched))
		c.more("or point at them: " + ort.EnvCUDALibs + "=DIR[:DIR...] (e.g. the nvidia/cu13/lib and nvidia/cudnn/lib")
		c.more("of a CUDA 13 PyTorch: find / -name libcublasLt.so.13)")
	}
	if len(cuda.LibraryDirs) > 0 {
		c.item(markInfo, "Worker env", "LD_LIBRARY_PATH="+cuda.LDLibraryPath(""))
	}
	for _, w := range cuda.Warnings {
		c.item(markWarn, "Note", w)
	}
}

// describeSearch summarizes the search steps: "LD_LIBRARY_PATH (2 dirs) · …".
func describeSearch(steps []ort.CUDASearchStep) string {
	parts := make([]string, 0, len(steps))
	for _, s := range steps {
		switch len(s.Dirs) {
		case 0:
			parts = append(parts, s.Source+" (none)")
		case 1:
			if s.Dirs[0] == s.Source {
				parts = append(parts, s.Source)
			} else {
				parts = append(parts, s.Source+" (1 dir)")
			}
		default:
			parts = append(parts, fmt.Sprintf("%s (%d dirs)", s.Source, len(s.Dirs)))
		}
	}
	return strings.Join(parts, " · ")
}

// wrapTokens joins tokens with two spaces, perLine tokens to a line.
func wrapTokens(tokens []string, perLine int) []string {
	var lines []string
	for len(tokens) > 0 {
		n := min(perLine, len(tokens))
		lines = append(lines, strings.Join(tokens[:n], "  "))
		tokens = tokens[n:]
	}
	return lines
}

// formatWatts renders a power reading: "71.5 W", "700 W", or "n/a".
func formatWatts(w *float64) string {
	if w == nil {
		return "n/a"
	}
	s := fmt.Sprintf("%.1f", *w)
	return strings.TrimSuffix(s, ".0") + " W"
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
