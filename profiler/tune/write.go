package tune

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
)

// WriteModel writes the winner's model file (the very file that was
// measured) to dst, with external data beside it when it had any, and
// its plan to dst's name with ".plan.json" (for `quantscope quantize
// --plan`).
func WriteModel(w Step, model, dst string) (planPath string, err error) {
	if w.M.Path == "" {
		return "", fmt.Errorf("write %s: the winner %s has no model file", dst, w.Spec)
	}
	m, err := onnx.Load(w.M.Path)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", dst, err)
	}
	external, err := onnx.HasExternalData(w.M.Path)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", dst, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", dst, err)
	}
	if err := onnx.Save(m, dst, onnx.SaveOptions{ExternalData: external}); err != nil {
		return "", fmt.Errorf("write %s: %w", dst, err)
	}
	sp, err := quant.ParseSpec(w.Spec)
	if err != nil {
		return "", err
	}
	planPath = strings.TrimSuffix(dst, filepath.Ext(dst)) + ".plan.json"
	if err := quant.WritePlan(planPath, quant.PlanOf(model, sp)); err != nil {
		return "", fmt.Errorf("write %s: %w", planPath, err)
	}
	return planPath, nil
}

// WriteSummary writes the result (every step, the frontier, the winner)
// as indented JSON.
func WriteSummary(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
