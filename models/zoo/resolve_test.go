package zoo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// saveGraph builds a one-node model with the given inputs and writes it to
// dir/name; ext writes its weight to an external file.
func saveGraph(t *testing.T, dir, name string, ext bool, inputs ...[]any) string {
	t.Helper()
	b := onnx.NewBuilder("g", 17)
	var ins []string
	for i, in := range inputs {
		dt := in[1].(onnx.DataType)
		n := b.AddInput(in[0].(string), dt, onnx.Dims(in[2:]...))
		if dt == onnx.Float && i == 0 {
			ins = append(ins, n)
		}
	}
	w := b.AddInitializerFloat32("w", []int64{4096}, make([]float32, 4096))
	if len(ins) == 0 {
		b.AddNode("Identity", []string{w}, []string{"y"})
	} else {
		r := b.AddNode("ReduceMean", ins, nil, onnx.AttrInts("axes", 2, 3), onnx.AttrInt("keepdims", 0)).Out()
		b.AddNode("Identity", []string{r}, []string{"y"})
	}
	b.AddOutput("y", onnx.Float, nil)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := onnx.Save(m, p, onnx.SaveOptions{ExternalData: ext}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportAcceptsImageModels(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		ext    bool
		input  []any
		want   ImageInput
		res    int
		params int64
	}{
		{"static.onnx", false, []any{"images", onnx.Float, 1, 3, 256, 256},
			ImageInput{Name: "images", Batch: 1, Channels: 3, Height: 256, Width: 256}, 256, 4096},
		{"symbolic.onnx", true, []any{"input", onnx.Float, "N", 3, "H", "W"},
			ImageInput{Name: "input", Batch: -1, Channels: 3, Height: -1, Width: -1, DimNames: [4]string{"N", "", "H", "W"}}, 224, 4096},
		{"unknown-channels.onnx", false, []any{"x", onnx.Float, "batch", "c", 224, 224},
			ImageInput{Name: "x", Batch: -1, Channels: -1, Height: 224, Width: 224, DimNames: [4]string{"batch", "c"}}, 224, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := saveGraph(t, dir, tt.name, tt.ext, tt.input)
			r, err := Resolve(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Imported || r.Input != tt.want || r.Spec.Resolution != tt.res || r.Params != tt.params || r.Output != "y" {
				t.Errorf("got %+v", r)
			}
			if r.Spec.Family != FamilyImported || r.Spec.Name != strings.TrimSuffix(tt.name, ".onnx") || r.Spec.Preprocess.Name != "imagenet" {
				t.Errorf("spec %+v", r.Spec)
			}
			// Bytes include the external data file.
			st, _ := os.Stat(p)
			if tt.ext && r.Bytes < st.Size()+4*4096 {
				t.Errorf("bytes %d do not include the data file", r.Bytes)
			}
		})
	}
}

func TestImportRejectsWhatIsNotAnImageModel(t *testing.T) {
	dir := t.TempDir()
	notONNX := filepath.Join(dir, "weights.onnx")
	if err := os.WriteFile(notONNX, []byte("PK\x03\x04 this is a zip file, not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		is      error
		wantMsg []string
	}{
		{"text model", saveGraph(t, dir, "bert.onnx", false,
			[]any{"input_ids", onnx.Int64, "batch", "sequence"}, []any{"attention_mask", onnx.Int64, "batch", "sequence"}),
			ErrNotImageModel, []string{"found 2 inputs (a text model?)", `"input_ids" INT64 [batch, sequence]`, `"attention_mask" INT64 [batch, sequence]`, "one float32 image input [N, 3, H, W]"}},
		{"single token input", saveGraph(t, dir, "gpt.onnx", false, []any{"input_ids", onnx.Int64, "batch", "sequence"}),
			ErrNotImageModel, []string{`input "input_ids" INT64 [batch, sequence] is INT64 (token ids: a text model?)`}},
		{"two image inputs", saveGraph(t, dir, "two.onnx", false,
			[]any{"left", onnx.Float, "N", 3, 224, 224}, []any{"right", onnx.Float, "N", 3, 224, 224}),
			ErrNotImageModel, []string{"found 2 inputs:", `"left" FLOAT [N, 3, 224, 224], "right" FLOAT [N, 3, 224, 224]`}},
		{"rank 2", saveGraph(t, dir, "mlp.onnx", false, []any{"x", onnx.Float, "N", 784}),
			ErrNotImageModel, []string{`input "x" FLOAT [N, 784] has rank 2`}},
		{"channels last", saveGraph(t, dir, "nhwc.onnx", false, []any{"x", onnx.Float, "N", 224, 224, 3}),
			ErrNotImageModel, []string{"channels-last (NHWC)"}},
		{"grayscale", saveGraph(t, dir, "gray.onnx", false, []any{"x", onnx.Float, "N", 1, 28, 28}),
			ErrNotImageModel, []string{"has 1 channels, want 3"}},
		{"fp16 input", saveGraph(t, dir, "half.onnx", false, []any{"x", onnx.Float16, "N", 3, 224, 224}),
			ErrNotImageModel, []string{"is FLOAT16", "give quantscope the FP32 model"}},
		{"no inputs", saveGraph(t, dir, "const.onnx", false),
			ErrNotImageModel, []string{"the graph has no inputs"}},
		{"not ONNX", notONNX, onnx.ErrInvalidModel, []string{"not a valid ONNX model"}},
		{"missing file", filepath.Join(dir, "nope.onnx"), nil, []string{"nope.onnx does not exist"}},
		{"directory", dir + "/", nil, []string{"is a directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(context.Background(), tt.path)
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), filepath.Base(strings.TrimSuffix(tt.path, "/"))) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestResolveUnknownNameSuggests(t *testing.T) {
	_, err := Resolve(context.Background(), "vit-base16", WithCacheDir(t.TempDir()))
	if !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "did you mean vit-base-16") {
		t.Errorf("err = %v", err)
	}
	_, err = Resolve(context.Background(), "zzzzzzzzzzzz", WithCacheDir(t.TempDir()))
	if !errors.Is(err, ErrUnknownModel) || strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), "quantscope models list") {
		t.Errorf("err = %v", err)
	}
	if _, err := Resolve(context.Background(), ""); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("empty name: %v", err)
	}
}

// A catalog name resolves to a cached build; the cached file, named by
// path, resolves back to its catalog entry.
func TestResolveCatalogNameAndItsFile(t *testing.T) {
	dir := t.TempDir()
	r, err := Resolve(context.Background(), "mobilevit-xxs", WithCacheDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if r.Imported || r.Spec.Name != "mobilevit-xxs" || r.Input.Height != 256 || r.Manifest == nil {
		t.Errorf("catalog resolve: %+v", r)
	}
	again, err := Resolve(context.Background(), "MobileViT-XXS", WithCacheDir(dir))
	if err != nil || !again.Cached || again.Path != r.Path {
		t.Errorf("second resolve: cached %v path %s err %v", again.Cached, again.Path, err)
	}
	f, err := Resolve(context.Background(), r.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Imported || f.Spec.Name != "mobilevit-xxs" || f.Spec.Family != FamilyMobileViT || f.Spec.GFLOPs != r.Spec.GFLOPs || f.Bytes != r.Bytes {
		t.Errorf("file resolve: %+v", f)
	}
	// A different resolution is another build.
	r2, err := Resolve(context.Background(), "mobilevit-xxs", WithCacheDir(dir), WithResolution(320))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Path == r.Path || r2.Input.Height != 320 || r2.Spec.Resolution != 320 || r2.Spec.GFLOPs <= r.Spec.GFLOPs {
		t.Errorf("320 px: %+v", r2)
	}
}

// An imported model may declare its normalization in metadata, as
// quantscope's builds do; a malformed declaration falls back to ImageNet's.
func TestImportReadsPreprocessMetadata(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, mean, std string
		want            Preprocess
	}{
		{"declared", "0.5,0.5,0.5", "0.25, 0.5, 1", Preprocess{Name: "model metadata", Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.5, 1}}},
		{"two-values", "0.5,0.5", "0.5,0.5,0.5", ImageNetNorm},
		{"zero-std", "0,0,0", "0,1,1", ImageNetNorm},
		{"not-numbers", "a,b,c", "1,1,1", ImageNetNorm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := saveGraph(t, dir, tc.name+".onnx", false, []any{"x", onnx.Float, "N", 3, 32, 32})
			m, err := onnx.Load(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range [][2]string{{"quantscope.mean", tc.mean}, {"quantscope.std", tc.std}} {
				k, v := kv[0], kv[1]
				m.Proto.MetadataProps = append(m.Proto.MetadataProps, &onnxpb.StringStringEntryProto{Key: &k, Value: &v})
			}
			if err := onnx.Save(m, p, onnx.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			r, err := Resolve(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Spec.Preprocess != tc.want {
				t.Errorf("preprocess %+v, want %+v", r.Spec.Preprocess, tc.want)
			}
		})
	}
}

// The crop and interpolation an imported model declares, and the
// catalog's per-family data configs.
func TestDataConfig(t *testing.T) {
	dir := t.TempDir()
	p := saveGraph(t, dir, "declared.onnx", false, []any{"x", onnx.Float, "N", 3, 32, 32})
	m, err := onnx.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{MetaMean, "0.5,0.5,0.5"}, {MetaStd, "0.5,0.5,0.5"}, {MetaCropPct, "1.0"}, {MetaInterpolation, "Bicubic"}} {
		k, v := kv[0], kv[1]
		m.Proto.MetadataProps = append(m.Proto.MetadataProps, &onnxpb.StringStringEntryProto{Key: &k, Value: &v})
	}
	if err := onnx.Save(m, p, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := Resolve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Spec.DataConfig()
	if d.CropPct != 1 || d.Interpolation != "bicubic" || d.Mean[0] != 0.5 || d.Source != "model metadata" {
		t.Errorf("declared: %+v", d)
	}
	plain := saveGraph(t, dir, "plain.onnx", false, []any{"x", onnx.Float, "N", 3, 32, 32})
	r, err = Resolve(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Spec.DataConfig(); d.CropPct != 0.875 || d.Interpolation != "bilinear" || d.Std != ImageNetNorm.Std || !strings.Contains(d.Source, "assumed") {
		t.Errorf("undeclared: %+v", d)
	}
	for name, want := range map[string][2]any{
		"vit-base-16": {0.9, "bicubic"}, "vit-base-16-384": {1.0, "bicubic"}, "deit-tiny": {0.9, "bicubic"},
		"dinov2-small": {1.0, "bicubic"}, "clip-vit-b32": {1.0, "bicubic"}, "resnet-50": {0.875, "bilinear"},
		"mobilevit-xxs": {0.9, "bicubic"}, "beit-base-16": {0.9, "bicubic"},
	} {
		s, _ := Lookup(name)
		if d := s.DataConfig(); d.CropPct != want[0] || d.Interpolation != want[1] || d.Std != s.Preprocess.Std {
			t.Errorf("%s: %+v, want crop %v %v", name, d, want[0], want[1])
		}
	}
}
