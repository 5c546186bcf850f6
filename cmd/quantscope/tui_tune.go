package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/report"
	"github.com/quantscope/quantscope/profiler/sensitivity"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/tune"
	"github.com/quantscope/quantscope/tui"
)

// tuiTune is the Tune screen's search: quantscope tune's, its candidates
// recorded in <out>.tune.jsonl beside the TUI's results file, the winner
// written to <model>.tuned.onnx in the working directory.
func tuiTune(g *globalOptions, out string) tui.TuneFunc {
	return func(ctx context.Context, req tui.TuneRequest, onStep func(tune.Step)) (*tune.Result, error) {
		budget, err := report.ParseGate(req.Budget)
		if err != nil {
			return nil, fmt.Errorf("budget: %w", err)
		}
		if budget.IsZero() {
			return nil, fmt.Errorf("budget is empty")
		}
		objective, err := tune.ParseObjective(req.Objective)
		if err != nil {
			return nil, err
		}
		info, err := ort.Init(g.ortLib)
		if err != nil {
			return nil, err
		}
		res, err := zoo.Resolve(ctx, req.Model)
		if err != nil {
			return nil, err
		}
		var dataset *evaluate.Dataset
		if req.EvalDir != "" {
			dataset = &evaluate.Dataset{Dir: req.EvalDir, Labels: req.Labels, Overrides: req.EvalOverrides}
			if _, err := dataset.Scan(); err != nil {
				return nil, err
			}
		}
		batch := 1
		if objective == tune.Throughput {
			batch = 8
		}
		results := strings.TrimSuffix(out, filepath.Ext(out)) + ".tune.jsonl"
		meas := &tune.StudyMeasurer{Model: req.Model, EP: req.EP, Batch: batch, Optimize: req.Optimize,
			Run: study.RunConfig{Out: results, Prepare: study.NewPreparer(), Host: study.ReadHost(info, nil), Duration: 3 * time.Second, ORTLib: g.ortLib, Eval: dataset}}
		rank := func(ctx context.Context, kind quant.Kind) ([]string, error) {
			return tuneRanking(ctx, rankConfig{model: req.Model, optimize: req.Optimize, samples: 8, by: "block"}, res, kind, dataset, io.Discard)
		}
		r, err := tune.Run(ctx, tune.Config{Budget: budget, Objective: objective, EP: req.EP, OnStep: onStep}, meas, rank)
		if err != nil {
			return nil, err
		}
		if err := tune.WriteSummary(strings.TrimSuffix(results, ".jsonl")+".json", r); err != nil {
			return r, err
		}
		if r.Winner.Spec != "fp32" {
			if _, err := tune.WriteModel(r.Winner, req.Model, res.Spec.Name+".tuned.onnx"); err != nil {
				return r, err
			}
			r.Notes = append(r.Notes, "wrote "+res.Spec.Name+".tuned.onnx and its .plan.json; candidates in "+results)
		}
		return r, nil
	}
}

// tuiSensitivity ranks an experiment's layers for the run detail, on seeded
// synthetic images.
func tuiSensitivity(g *globalOptions) tui.SensitivityFunc {
	return func(ctx context.Context, exp study.Experiment) (*sensitivity.Result, error) {
		spec, err := quant.ParseSpec(exp.Precision)
		if err != nil {
			return nil, err
		}
		if _, err := ort.Init(g.ortLib); err != nil {
			return nil, err
		}
		res, path, err := sensitivity.Source(ctx, exp.Model, spec.Kind, exp.Optimize)
		if err != nil {
			return nil, err
		}
		in, err := sensitivity.SyntheticInputs(path, res, 8)
		if err != nil {
			return nil, err
		}
		return sensitivity.Run(ctx, sensitivity.Config{Model: path, Precision: spec, By: sensitivity.ByLayer, Inputs: in,
			Session: ort.SessionConfig{IntraOpThreads: exp.Threads}})
	}
}
