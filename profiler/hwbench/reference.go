package hwbench

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// referencesCSV is the shipped table of measured reference figures.
//
//go:embed references.csv
var referencesCSV string

// Reference is one measured figure on a known machine.
type Reference struct {
	Kind       string  // inference, memory, gemm
	Item       string  // model name, or what was measured ("host-copy")
	Precision  string  // fp32, int8, fp16… ("" for memory)
	EP         string  // cpu, cuda
	Batch      int     // samples per run (0 when it does not apply)
	Fused      bool    // the model ran fused (models/optimize)
	MachineKey string  // cpu:<vendor>:<family>:<model>:<cores> or gpu:<part>
	Machine    string  // the machine in words
	Value      float64 // in Unit
	Unit       string
	Engine     string // quantscope, onnxruntime, pytorch
	Date       string // when it was measured (YYYY-MM[-DD])
	Source     string // how
}

// Engines of reference rows. A verdict is taken against a quantscope row
// (same harness, fusion and binding) or, when there is none, against an
// onnxruntime row (the same runtime through another harness, stated in the
// line's basis); other engines (pytorch) are context only.
const (
	EngineQuantscope  = "quantscope"
	EngineONNXRuntime = "onnxruntime"
)

// referenceColumns is the table's header.
var referenceColumns = []string{"kind", "item", "precision", "ep", "batch", "fused", "machine_key", "machine", "value", "unit", "engine", "date", "source"}

// References returns the shipped reference table.
func References() ([]Reference, error) { return ParseReferences(strings.NewReader(referencesCSV)) }

// ParseReferences reads a reference table: CSV with the header
// referenceColumns, lines starting with # ignored.
func ParseReferences(r io.Reader) ([]Reference, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = len(referenceColumns)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reference table: %w", err)
	}
	for i, c := range referenceColumns {
		if head[i] != c {
			return nil, fmt.Errorf("reference table: column %d is %q, want %q", i+1, head[i], c)
		}
	}
	var out []Reference
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reference table: %w", err)
		}
		line, _ := cr.FieldPos(0)
		ref := Reference{Kind: rec[0], Item: rec[1], Precision: rec[2], EP: rec[3], MachineKey: rec[6], Machine: rec[7],
			Unit: rec[9], Engine: rec[10], Date: rec[11], Source: rec[12]}
		if ref.Batch, err = strconv.Atoi(rec[4]); err != nil || ref.Batch < 0 {
			return nil, fmt.Errorf("reference table line %d: batch %q: want a whole number", line, rec[4])
		}
		if ref.Fused, err = strconv.ParseBool(rec[5]); err != nil {
			return nil, fmt.Errorf("reference table line %d: fused %q: want true or false", line, rec[5])
		}
		if ref.Value, err = strconv.ParseFloat(rec[8], 64); err != nil || ref.Value <= 0 {
			return nil, fmt.Errorf("reference table line %d: value %q: want a positive number", line, rec[8])
		}
		if ref.Kind == "" || ref.Item == "" || ref.MachineKey == "" || ref.Engine == "" || ref.Date == "" {
			return nil, fmt.Errorf("reference table line %d: kind, item, machine_key, engine and date are required", line)
		}
		out = append(out, ref)
	}
}

// refQuery is what a measured figure is to be compared with.
type refQuery struct {
	Kind, Item, Precision, EP string
	Batch                     int
	Fused                     bool
	MachineKey                string
}

// matchReferences returns the row to judge q against (nil when there is
// none): the latest quantscope row of the same kind, item, precision, EP,
// batch, fusion and machine; else, for a fused query, the latest unfused
// quantscope row (a floor: fusion only ever speeds a model up); else the
// latest onnxruntime row of the same precision and batch. The other rows
// for the same item, precision, batch and machine come back as context.
func matchReferences(refs []Reference, q refQuery) (basis *Reference, context []Reference) {
	var own, floor, ort *Reference
	for i := range refs {
		r := &refs[i]
		if r.Kind != q.Kind || r.Item != q.Item || r.MachineKey != q.MachineKey || r.EP != q.EP ||
			r.Precision != q.Precision || r.Batch != q.Batch {
			continue
		}
		switch {
		case r.Engine == EngineQuantscope && r.Fused == q.Fused:
			if own == nil || r.Date > own.Date {
				own = r
			}
		case r.Engine == EngineQuantscope && q.Fused && !r.Fused:
			if floor == nil || r.Date > floor.Date {
				floor = r
			}
		case r.Engine == EngineONNXRuntime:
			if ort == nil || r.Date > ort.Date {
				ort = r
			}
		}
	}
	basis = own
	if basis == nil {
		basis = floor
	}
	if basis == nil {
		basis = ort
	}
	for i := range refs {
		r := &refs[i]
		if r != basis && r.Kind == q.Kind && r.Item == q.Item && r.MachineKey == q.MachineKey && r.EP == q.EP &&
			r.Precision == q.Precision && r.Batch == q.Batch {
			context = append(context, *r)
		}
	}
	return basis, context
}

// describe is a reference row in words for a report line.
func (r Reference) describe() string {
	fused := ""
	if !r.Fused && r.Kind == "inference" {
		fused = " (unfused)"
	}
	return fmt.Sprintf("%s, %s%s, %s: %s", r.Machine, r.Engine, fused, r.Date, r.Source)
}
