package zoo_test

// Numerical truth: for tiny configurations of every transformer flavor,
// MobileViT, ResNet and MobileNetV2, the ONNX graph run by ONNX Runtime equals a plain-Go
// forward pass of the same architecture, written from the reference
// implementations (timm, OpenAI CLIP) independently of the graph builders.
//
// Before the comparison every parameter is redrawn at a scale where it
// matters (weights σ≈0.3 instead of 0.02, biases, LayerNorm and LayerScale
// factors away from 0 and 1), so a misplaced bias, a transposed weight or
// a wrong attention scale shows up far beyond the 1e-4 tolerance.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/ort"
)

// params maps initializer names to values.
type params map[string][]float64

func (p params) get(t testing.TB, name string) []float64 {
	t.Helper()
	v, ok := p[name]
	if !ok {
		t.Fatalf("the graph has no parameter %q", name)
	}
	return v
}

// randomize redraws every float initializer of m in place and returns the
// new values by name.
func randomize(t testing.TB, m *onnx.Model, seed uint64) params {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	p := params{}
	for _, tp := range m.Graph().GetInitializer() {
		if onnx.DataTypeOf(tp) != onnx.Float {
			continue
		}
		v, err := onnx.TensorFloat32(tp)
		if err != nil {
			t.Fatal(err)
		}
		dims := tp.GetDims()
		std := 0.3
		if len(dims) == 4 { // conv [out, in/groups, k, k]
			std = 1.2 / math.Sqrt(float64(dims[1]*dims[2]*dims[3]))
		}
		out := make([]float64, len(v))
		raw := make([]byte, 4*len(v))
		for i, x := range v {
			var y float64
			if len(dims) == 1 {
				// Biases (0) become small, LayerNorm γ (1) and LayerScale
				// factors vary around their value.
				y = float64(x) + 0.1*r.NormFloat64()
			} else {
				y = std * r.NormFloat64()
			}
			y = float64(float32(y))
			out[i] = y
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(y)))
		}
		tp.RawData = raw
		p[tp.GetName()] = out
	}
	return p
}

// --- plain-Go building blocks (float64) ---

// linear is y = x·W + b for W stored [in, out] (the graph's MatMul layout);
// b may be nil.
func linear(x [][]float64, w, b []float64, in, out int) [][]float64 {
	y := make([][]float64, len(x))
	for i, row := range x {
		y[i] = make([]float64, out)
		for o := range out {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for k := range in {
				s += row[k] * w[k*out+o]
			}
			y[i][o] = s
		}
	}
	return y
}

// dense is nn.Linear with its PyTorch weight layout [out, in].
func dense(x, w, b []float64, in, out int) []float64 {
	y := make([]float64, out)
	for o := range out {
		s := b[o]
		for k := range in {
			s += w[o*in+k] * x[k]
		}
		y[o] = s
	}
	return y
}

func layerNorm(x [][]float64, g, b []float64, eps float64) [][]float64 {
	y := make([][]float64, len(x))
	for i, row := range x {
		mean, v := 0.0, 0.0
		for _, a := range row {
			mean += a
		}
		mean /= float64(len(row))
		for _, a := range row {
			v += (a - mean) * (a - mean)
		}
		v /= float64(len(row))
		y[i] = make([]float64, len(row))
		for j, a := range row {
			y[i][j] = (a-mean)/math.Sqrt(v+eps)*g[j] + b[j]
		}
	}
	return y
}

func mapRows(x [][]float64, f func(float64) float64) [][]float64 {
	for _, row := range x {
		for j := range row {
			row[j] = f(row[j])
		}
	}
	return x
}

func gelu(x float64) float64      { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
func quickGelu(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }
func silu(x float64) float64      { return x / (1 + math.Exp(-x)) }

// blockCfg is a pre-norm transformer block as in timm's Block.
type blockCfg struct {
	dim, heads, mlp int
	eps             float64
	act             func(float64) float64
	qvBias          bool                      // BEiT: q_bias, no k bias, v_bias
	relBias         func(h, i, j int) float64 // BEiT relative position bias
	ls              [2]string                 // LayerScale parameter suffixes ("" none)
}

func block(t testing.TB, p params, prefix string, x [][]float64, c blockCfg) [][]float64 {
	D, H := c.dim, c.heads
	hd := D / H
	h := layerNorm(x, p.get(t, prefix+".norm1.weight"), p.get(t, prefix+".norm1.bias"), c.eps)
	var bias []float64
	if c.qvBias {
		bias = append(append(append([]float64{}, p.get(t, prefix+".attn.q_bias")...), make([]float64, D)...), p.get(t, prefix+".attn.v_bias")...)
	} else {
		bias = p.get(t, prefix+".attn.qkv.bias")
	}
	qkv := linear(h, p.get(t, prefix+".attn.qkv.weight"), bias, D, 3*D)
	n := len(x)
	o := make([][]float64, n)
	for i := range o {
		o[i] = make([]float64, D)
	}
	scale := 1 / math.Sqrt(float64(hd))
	for head := range H {
		for i := range n {
			scores := make([]float64, n)
			m := math.Inf(-1)
			for j := range n {
				s := 0.0
				for d := range hd {
					s += qkv[i][head*hd+d] * qkv[j][D+head*hd+d]
				}
				s *= scale
				if c.relBias != nil {
					s += c.relBias(head, i, j)
				}
				scores[j] = s
				m = math.Max(m, s)
			}
			z := 0.0
			for j := range scores {
				scores[j] = math.Exp(scores[j] - m)
				z += scores[j]
			}
			for j := range n {
				for d := range hd {
					o[i][head*hd+d] += scores[j] / z * qkv[j][2*D+head*hd+d]
				}
			}
		}
	}
	a := linear(o, p.get(t, prefix+".attn.proj.weight"), p.get(t, prefix+".attn.proj.bias"), D, D)
	x = residual(t, p, x, a, prefix, c.ls[0])
	h = layerNorm(x, p.get(t, prefix+".norm2.weight"), p.get(t, prefix+".norm2.bias"), c.eps)
	h = linear(h, p.get(t, prefix+".mlp.fc1.weight"), p.get(t, prefix+".mlp.fc1.bias"), D, c.mlp)
	h = mapRows(h, c.act)
	h = linear(h, p.get(t, prefix+".mlp.fc2.weight"), p.get(t, prefix+".mlp.fc2.bias"), c.mlp, D)
	return residual(t, p, x, h, prefix, c.ls[1])
}

// residual returns x + γ·f (γ = 1 without LayerScale).
func residual(t testing.TB, p params, x, f [][]float64, prefix, ls string) [][]float64 {
	var g []float64
	if ls != "" {
		g = p.get(t, prefix+ls)
	}
	y := make([][]float64, len(x))
	for i := range x {
		y[i] = make([]float64, len(x[i]))
		for j := range x[i] {
			s := 1.0
			if g != nil {
				s = g[j]
			}
			y[i][j] = x[i][j] + s*f[i][j]
		}
	}
	return y
}

// beitRelativeIndex is timm's gen_relative_position_index for a wh×ww
// window: pairwise coordinate differences, shifted and flattened, with
// three extra rows for the class token.
func beitRelativeIndex(wh, ww int) [][]int {
	n := wh * ww
	numRel := (2*wh-1)*(2*ww-1) + 3
	coords := make([][2]int, n) // (row, col) of each patch, row-major
	for i := range n {
		coords[i] = [2]int{i / ww, i % ww}
	}
	idx := make([][]int, n+1)
	for i := range idx {
		idx[i] = make([]int, n+1)
	}
	for i := range n {
		for j := range n {
			r0 := coords[i][0] - coords[j][0] + wh - 1
			r1 := coords[i][1] - coords[j][1] + ww - 1
			idx[i+1][j+1] = r0*(2*ww-1) + r1
		}
	}
	for j := range n + 1 {
		idx[0][j] = numRel - 3
	}
	for i := range n + 1 {
		idx[i][0] = numRel - 2
	}
	idx[0][0] = numRel - 1
	return idx
}

// refViT is the forward pass of one image [3, res, res] through a ViT of
// any flavor.
func refViT(t testing.TB, p params, c zoo.ViTConfig, res int, img []float64) []float64 {
	D, P := c.Dim, c.Patch
	G := res / P
	eps := 1e-6
	if c.Flavor == zoo.FlavorCLIP {
		eps = 1e-5
	}
	// Tokens: class (and distillation) token, then the patches row by row.
	var x [][]float64
	x = append(x, append([]float64{}, p.get(t, "cls_token")...))
	if c.Flavor == zoo.FlavorDeiTDistilled {
		x = append(x, append([]float64{}, p.get(t, "dist_token")...))
	}
	nPrefix := len(x)
	pw := p.get(t, "patch_embed.proj.weight")
	var pb []float64
	if c.Flavor != zoo.FlavorCLIP {
		pb = p.get(t, "patch_embed.proj.bias")
	}
	for gy := range G {
		for gx := range G {
			v := make([]float64, D)
			for d := range D {
				if pb != nil {
					v[d] = pb[d]
				}
				for ch := range 3 {
					for ky := range P {
						for kx := range P {
							v[d] += pw[((d*3+ch)*P+ky)*P+kx] * img[(ch*res+gy*P+ky)*res+gx*P+kx]
						}
					}
				}
			}
			x = append(x, v)
		}
	}
	if c.Flavor != zoo.FlavorBEiT {
		pos := p.get(t, "pos_embed")
		for i := range x {
			for d := range D {
				x[i][d] += pos[i*D+d]
			}
		}
	}
	if c.Flavor == zoo.FlavorCLIP {
		x = layerNorm(x, p.get(t, "norm_pre.weight"), p.get(t, "norm_pre.bias"), eps)
	}
	bc := blockCfg{dim: D, heads: c.Heads, mlp: c.MLPDim, eps: eps, act: gelu}
	switch c.Flavor {
	case zoo.FlavorCLIP:
		bc.act = quickGelu
	case zoo.FlavorDINOv2:
		bc.ls = [2]string{".ls1.gamma", ".ls2.gamma"}
	case zoo.FlavorBEiT:
		bc.ls = [2]string{".gamma_1", ".gamma_2"}
		bc.qvBias = true
	}
	idx := beitRelativeIndex(G, G)
	for b := range c.Depth {
		prefix := fmt.Sprintf("blocks.%d", b)
		if c.Flavor == zoo.FlavorBEiT {
			table := p.get(t, prefix+".attn.relative_position_bias_table")
			bc.relBias = func(h, i, j int) float64 { return table[idx[i][j]*c.Heads+h] }
		}
		x = block(t, p, prefix, x, bc)
	}
	switch c.Flavor {
	case zoo.FlavorBEiT:
		mean := make([]float64, D)
		for _, row := range x[nPrefix:] {
			for d := range D {
				mean[d] += row[d] / float64(len(x)-nPrefix)
			}
		}
		f := layerNorm([][]float64{mean}, p.get(t, "fc_norm.weight"), p.get(t, "fc_norm.bias"), eps)[0]
		return dense(f, p.get(t, "head.weight"), p.get(t, "head.bias"), D, c.Classes)
	case zoo.FlavorCLIP:
		f := layerNorm(x[:1], p.get(t, "norm.weight"), p.get(t, "norm.bias"), eps)
		return linear(f, p.get(t, "proj"), nil, D, c.Proj)[0]
	}
	x = layerNorm(x, p.get(t, "norm.weight"), p.get(t, "norm.bias"), eps)
	if c.Classes == 0 {
		return x[0]
	}
	logits := dense(x[0], p.get(t, "head.weight"), p.get(t, "head.bias"), D, c.Classes)
	if c.Flavor == zoo.FlavorDeiTDistilled {
		dist := dense(x[1], p.get(t, "head_dist.weight"), p.get(t, "head_dist.bias"), D, c.Classes)
		for i := range logits {
			logits[i] = (logits[i] + dist[i]) / 2
		}
	}
	return logits
}

// fmap is a feature map [c, h, w].
type fmap struct {
	c, h, w int
	d       []float64
}

func (f fmap) at(c, y, x int) float64 { return f.d[(c*f.h+y)*f.w+x] }

// conv2d is a convolution with padding (k-1)/2 and a bias (nil: none),
// weight [cout, cin/groups, k, k].
func conv2d(x fmap, w, b []float64, cout, k, stride, groups int) fmap {
	pad := (k - 1) / 2
	oh, ow := (x.h+2*pad-k)/stride+1, (x.w+2*pad-k)/stride+1
	cinG, coutG := x.c/groups, cout/groups
	y := fmap{cout, oh, ow, make([]float64, cout*oh*ow)}
	for o := range cout {
		g := o / coutG
		for oy := range oh {
			for ox := range ow {
				s := 0.0
				if b != nil {
					s = b[o]
				}
				for ci := range cinG {
					c := g*cinG + ci
					for ky := range k {
						iy := oy*stride - pad + ky
						if iy < 0 || iy >= x.h {
							continue
						}
						for kx := range k {
							ix := ox*stride - pad + kx
							if ix < 0 || ix >= x.w {
								continue
							}
							s += w[((o*cinG+ci)*k+ky)*k+kx] * x.at(c, iy, ix)
						}
					}
				}
				y.d[(o*oh+oy)*ow+ox] = s
			}
		}
	}
	return y
}

// convAct is a convolution with its folded BatchNorm (weight and bias in
// the graph), then SiLU when act is set.
func convAct(t testing.TB, p params, x fmap, name string, cout, k, stride, groups int, act bool) fmap {
	y := conv2d(x, p.get(t, name+".weight"), p.get(t, name+".bias"), cout, k, stride, groups)
	if act {
		for i := range y.d {
			y.d[i] = silu(y.d[i])
		}
	}
	return y
}

// mv2 is MobileNetV2's inverted residual block with SiLU.
func mv2(t testing.TB, p params, x fmap, name string, out, stride int, expand float64) fmap {
	hidden := int(float64(x.c) * expand) // the tiny configs keep multiples of 8
	y := convAct(t, p, x, name+".conv1_1x1", hidden, 1, 1, 1, true)
	y = convAct(t, p, y, name+".conv2_kxk", hidden, 3, stride, hidden, true)
	y = convAct(t, p, y, name+".conv3_1x1", out, 1, 1, 1, false)
	if stride == 1 && x.c == out {
		for i := range y.d {
			y.d[i] += x.d[i]
		}
	}
	return y
}

// mobileViTBlock follows timm's MobileVitBlock: local representation,
// unfold into 2×2-pixel patches (one sequence per pixel position of the
// patch), transformer, fold, projection, fusion with the input.
func mobileViTBlock(t testing.TB, p params, x fmap, name string, c zoo.MobileViTConfig, s int) fmap {
	d := c.Dims[s]
	ph := c.Patch
	y := convAct(t, p, x, name+".conv_kxk", x.c, 3, 1, 1, true)
	y = conv2d(y, p.get(t, name+".conv_1x1.weight"), nil, d, 1, 1, 1)
	nh, nw := y.h/ph, y.w/ph
	bc := blockCfg{dim: d, heads: c.Heads, mlp: int(float64(d) * c.MLPRatio), eps: 1e-5, act: silu}
	for py := range ph {
		for px := range ph {
			seq := make([][]float64, nh*nw)
			for iy := range nh {
				for ix := range nw {
					tok := make([]float64, d)
					for ch := range d {
						tok[ch] = y.at(ch, iy*ph+py, ix*ph+px)
					}
					seq[iy*nw+ix] = tok
				}
			}
			for b := range c.Depths[s] {
				seq = block(t, p, fmt.Sprintf("%s.transformer.%d", name, b), seq, bc)
			}
			seq = layerNorm(seq, p.get(t, name+".norm.weight"), p.get(t, name+".norm.bias"), 1e-5)
			for iy := range nh {
				for ix := range nw {
					for ch := range d {
						y.d[(ch*y.h+iy*ph+py)*y.w+ix*ph+px] = seq[iy*nw+ix][ch]
					}
				}
			}
		}
	}
	y = convAct(t, p, y, name+".conv_proj", x.c, 1, 1, 1, true)
	cat := fmap{2 * x.c, x.h, x.w, append(append([]float64{}, x.d...), y.d...)}
	return convAct(t, p, cat, name+".conv_fusion", x.c, 3, 1, 1, true)
}

// refMobileViT is the forward pass of one image through MobileViT.
func refMobileViT(t testing.TB, p params, c zoo.MobileViTConfig, res int, img []float64) []float64 {
	x := convAct(t, p, fmap{3, res, res, img}, "stem.conv", c.Stem, 3, 2, 1, true)
	x = mv2(t, p, x, "stages.0.0", c.Channels[0], 1, c.Expansion)
	for b := range 3 {
		stride := 1
		if b == 0 {
			stride = 2
		}
		x = mv2(t, p, x, fmt.Sprintf("stages.1.%d", b), c.Channels[1], stride, c.Expansion)
	}
	for s := range 3 {
		x = mv2(t, p, x, fmt.Sprintf("stages.%d.0", s+2), c.Channels[s+2], 2, c.Expansion)
		x = mobileViTBlock(t, p, x, fmt.Sprintf("stages.%d.1", s+2), c, s)
	}
	x = convAct(t, p, x, "final_conv", c.ExpChannels, 1, 1, 1, true)
	pooled := make([]float64, x.c)
	for ch := range x.c {
		for i := range x.h * x.w {
			pooled[ch] += x.d[ch*x.h*x.w+i] / float64(x.h*x.w)
		}
	}
	return dense(pooled, p.get(t, "head.fc.weight"), p.get(t, "head.fc.bias"), x.c, c.Classes)
}

// convBNAct is a convolution with folded BatchNorm (weight and bias in
// the graph) and an optional activation.
func convBNAct(t testing.TB, p params, x fmap, name string, cout, k, stride, groups int, act func(float64) float64) fmap {
	y := conv2d(x, p.get(t, name+".weight"), p.get(t, name+".bias"), cout, k, stride, groups)
	if act != nil {
		for i := range y.d {
			y.d[i] = act(y.d[i])
		}
	}
	return y
}

func relu(x float64) float64  { return math.Max(x, 0) }
func relu6(x float64) float64 { return math.Min(math.Max(x, 0), 6) }

// maxPool is a k×k max pooling with stride s and padding pad.
func maxPool(x fmap, k, s, pad int) fmap {
	oh, ow := (x.h+2*pad-k)/s+1, (x.w+2*pad-k)/s+1
	y := fmap{x.c, oh, ow, make([]float64, x.c*oh*ow)}
	for c := range x.c {
		for oy := range oh {
			for ox := range ow {
				m := math.Inf(-1)
				for ky := range k {
					for kx := range k {
						iy, ix := oy*s-pad+ky, ox*s-pad+kx
						if iy >= 0 && iy < x.h && ix >= 0 && ix < x.w {
							m = math.Max(m, x.at(c, iy, ix))
						}
					}
				}
				y.d[(c*oh+oy)*ow+ox] = m
			}
		}
	}
	return y
}

// globalPoolHead averages each channel and applies the Linear head name.
func globalPoolHead(t testing.TB, p params, x fmap, name string, classes int) []float64 {
	pooled := make([]float64, x.c)
	for ch := range x.c {
		for i := range x.h * x.w {
			pooled[ch] += x.d[ch*x.h*x.w+i] / float64(x.h*x.w)
		}
	}
	return dense(pooled, p.get(t, name+".weight"), p.get(t, name+".bias"), x.c, classes)
}

// refResNet is torchvision's ResNet with Bottleneck blocks (stride on the
// 3×3 convolution).
func refResNet(t testing.TB, p params, c zoo.ResNetConfig, res int, img []float64) []float64 {
	x := convBNAct(t, p, fmap{3, res, res, img}, "conv1", 64, 7, 2, 1, relu)
	x = maxPool(x, 3, 2, 1)
	for s, blocks := range c.Layers {
		planes := 64 << s
		for b := range blocks {
			name := fmt.Sprintf("layer%d.%d", s+1, b)
			stride := 1
			if b == 0 && s > 0 {
				stride = 2
			}
			r := convBNAct(t, p, x, name+".conv1", planes, 1, 1, 1, relu)
			r = convBNAct(t, p, r, name+".conv2", planes, 3, stride, 1, relu)
			r = convBNAct(t, p, r, name+".conv3", 4*planes, 1, 1, 1, nil)
			short := x
			if b == 0 {
				short = convBNAct(t, p, x, name+".downsample.0", 4*planes, 1, stride, 1, nil)
			}
			for i := range r.d {
				r.d[i] = relu(r.d[i] + short.d[i])
			}
			x = r
		}
	}
	return globalPoolHead(t, p, x, "fc", c.Classes)
}

// makeDivisible8 is torchvision's _make_divisible(v, 8).
func makeDivisible8(v float64) int {
	n := max(8, int(v+4)/8*8)
	if float64(n) < 0.9*v {
		n += 8
	}
	return n
}

// refMobileNetV2 is torchvision's MobileNetV2.
func refMobileNetV2(t testing.TB, p params, c zoo.MobileNetV2Config, res int, img []float64) []float64 {
	in := makeDivisible8(32 * c.Width)
	x := convBNAct(t, p, fmap{3, res, res, img}, "features.0.0", in, 3, 2, 1, relu6)
	idx := 1
	for _, st := range [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
		out := makeDivisible8(float64(st[1]) * c.Width)
		for i := range st[2] {
			stride := 1
			if i == 0 {
				stride = st[3]
			}
			name := fmt.Sprintf("features.%d.conv.", idx)
			hidden := int(math.Round(float64(in * st[0])))
			y, j := x, 0
			if st[0] != 1 {
				y = convBNAct(t, p, y, name+"0.0", hidden, 1, 1, 1, relu6)
				j = 1
			}
			y = convBNAct(t, p, y, fmt.Sprintf("%s%d.0", name, j), hidden, 3, stride, hidden, relu6)
			y = convBNAct(t, p, y, fmt.Sprintf("%s%d", name, j+1), out, 1, 1, 1, nil)
			if stride == 1 && in == out {
				for k := range y.d {
					y.d[k] += x.d[k]
				}
			}
			x, in = y, out
			idx++
		}
	}
	last := makeDivisible8(1280 * math.Max(1, c.Width))
	x = convBNAct(t, p, x, fmt.Sprintf("features.%d.0", idx), last, 1, 1, 1, relu6)
	return globalPoolHead(t, p, x, "classifier.1", c.Classes)
}

func TestGraphsMatchGoReference(t *testing.T) {
	requireORT(t)
	vit := func(f zoo.ViTFlavor, classes, proj int) zoo.ViTConfig {
		return zoo.ViTConfig{Flavor: f, Dim: 32, Depth: 2, Heads: 2, MLPDim: 64, Patch: 8, Classes: classes, Proj: proj, LayerScale: 0.5}
	}
	tests := []struct {
		name string
		arch zoo.Arch
		res  int
	}{
		{"vit-block", vit(zoo.FlavorViT, 10, 0), 32},
		{"vit-backbone", vit(zoo.FlavorViT, 0, 0), 32},
		{"deit-distilled-head", vit(zoo.FlavorDeiTDistilled, 10, 0), 32},
		{"dinov2-layerscale-block", vit(zoo.FlavorDINOv2, 0, 0), 32},
		{"beit-relative-position-bias", vit(zoo.FlavorBEiT, 10, 0), 32},
		{"clip-block", vit(zoo.FlavorCLIP, 0, 16), 32},
		{"mobilevit-block", zoo.MobileViTConfig{Stem: 8, Channels: [5]int{8, 16, 16, 24, 24}, Dims: [3]int{16, 16, 24},
			Depths: [3]int{2, 1, 1}, Expansion: 2, Heads: 2, Patch: 2, MLPRatio: 2, ExpChannels: 32, Classes: 10}, 64},
		{"resnet-bottlenecks", zoo.ResNetConfig{Layers: [4]int{1, 2, 1, 1}, Classes: 10}, 64},
		{"mobilenet-v2-blocks", zoo.MobileNetV2Config{Width: 0.25, Classes: 10}, 32},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := zoo.Spec{Name: "tiny-" + tt.name, Resolution: tt.res, Preprocess: zoo.ImageNetNorm, Arch: tt.arch}
			m, err := zoo.Build(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			p := randomize(t, m, uint64(i+1))
			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			sess, err := ort.NewSession(path, ort.SessionConfig{IntraOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			const batch = 2
			in := images(uint64(100+i), batch, tt.res)
			out := run(t, sess, batch, tt.res, in)
			per := len(out.Data) / batch
			var worst, scale float64
			for b := range batch {
				img := make([]float64, 3*tt.res*tt.res)
				for j := range img {
					img[j] = float64(in[b*len(img)+j])
				}
				var want []float64
				switch a := tt.arch.(type) {
				case zoo.ViTConfig:
					want = refViT(t, p, a, tt.res, img)
				case zoo.MobileViTConfig:
					want = refMobileViT(t, p, a, tt.res, img)
				case zoo.ResNetConfig:
					want = refResNet(t, p, a, tt.res, img)
				case zoo.MobileNetV2Config:
					want = refMobileNetV2(t, p, a, tt.res, img)
				}
				if len(want) != per {
					t.Fatalf("reference has %d outputs per image, the graph %d", len(want), per)
				}
				for j, w := range want {
					got := float64(out.Data[b*per+j])
					worst = math.Max(worst, math.Abs(got-w)/math.Max(1, math.Abs(w)))
					scale = math.Max(scale, math.Abs(w))
				}
			}
			if worst > 1e-4 {
				t.Errorf("graph and Go reference differ by %.3g (relative to max(1, |y|)); outputs up to %.3g", worst, scale)
			}
			// The comparison means something only if the outputs do.
			if scale < 0.1 {
				t.Errorf("outputs too small to compare: max |y| = %g", scale)
			}
			t.Logf("max difference %.2g, max |y| %.3g", worst, scale)
		})
	}
}
