package ort

import (
	"fmt"

	"github.com/quantscope/quantscope/models/quant"
)

// CalibRunner runs models for models/quant (int8-static calibration) on
// ONNX Runtime's CPU execution provider. Init must have succeeded.
type CalibRunner struct {
	// Config chooses threads and optimizations of every session.
	Config SessionConfig
}

// Open implements quant.Runner.
func (r CalibRunner) Open(modelPath string) (quant.Session, error) {
	s, err := NewSession(modelPath, r.Config)
	if err != nil {
		return nil, err
	}
	return calibSession{s: s}, nil
}

// calibSession adapts Session to quant.Session.
type calibSession struct{ s *Session }

// Run implements quant.Session.
func (c calibSession) Run(inputs ...quant.Tensor) ([]quant.Tensor, error) {
	in := make([]Tensor, len(inputs))
	for i, t := range inputs {
		in[i] = Tensor{Shape: t.Shape, Data: t.Data}
	}
	out, err := c.s.RunFloat32(in...)
	if err != nil {
		return nil, fmt.Errorf("calibration session: %w", err)
	}
	res := make([]quant.Tensor, len(out))
	for i, t := range out {
		res[i] = quant.Tensor{Shape: t.Shape, Data: t.Data}
	}
	return res, nil
}

// Close implements quant.Session.
func (c calibSession) Close() error { return c.s.Close() }
