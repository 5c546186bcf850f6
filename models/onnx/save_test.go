package onnx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// bigModel is buildBlock plus a FLOAT16 initializer over 1 MiB, so that the
// external file holds tensors of both alignment classes and a tensor below
// the threshold stays inline.
func bigModel(t *testing.T) *Model {
	t.Helper()
	m := buildBlock(t, 64) // fc.weight 16 KiB, vectors 256 B
	big, err := NewTensorFloat16("big", []int64{1024, 513}, Float32sToFloat16s(randFloats(9, 1024*513)))
	if err != nil {
		t.Fatal(err)
	}
	m.Proto.Graph.Initializer = append(m.Proto.Graph.Initializer, big)
	odd, _ := NewTensorInt8("odd", []int64{1031}, make([]int8, 1031))
	m.Proto.Graph.Initializer = append(m.Proto.Graph.Initializer, odd)
	return m
}

// rawByName maps each initializer's name to its raw bytes.
func rawByName(g *onnxpb.GraphProto) map[string][]byte {
	out := map[string][]byte{}
	for _, t := range g.GetInitializer() {
		out[t.GetName()] = t.GetRawData()
	}
	return out
}

// externalInfo reads the location, offset and length of a tensor saved
// externally, straight from the file written.
func externalInfo(t *testing.T, path string) map[string][3]string {
	t.Helper()
	m, err := LoadWith(path, LoadOptions{SkipExternalData: true})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][3]string{}
	for _, init := range m.Proto.Graph.Initializer {
		if !IsExternal(init) {
			continue
		}
		loc, _ := externalEntry(init, "location")
		off, _ := externalEntry(init, "offset")
		length, _ := externalEntry(init, "length")
		out[init.GetName()] = [3]string{loc, off, length}
		if init.RawData != nil {
			t.Errorf("%s: external tensor also has raw_data", init.GetName())
		}
	}
	return out
}

// noTempFiles fails when Save left temporary files in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		opts       SaveOptions
		dataFile   string   // expected external file, "" for none
		external   []string // tensors expected in it
		autoThresh int64    // lowered autoExternalBytes, 0 to keep
	}{
		{name: "inline", opts: SaveOptions{}},
		{name: "external", opts: SaveOptions{ExternalData: true}, dataFile: "model.onnx.data",
			external: []string{"fc.weight", "big", "odd"}},
		{name: "external custom file and threshold", opts: SaveOptions{ExternalData: true, ExternalFile: "weights.bin", SizeThreshold: 1},
			dataFile: "weights.bin", external: []string{"fc.weight", "fc.bias", "ln.scale", "ln.bias", "big", "odd"}},
		{name: "automatic external over the size limit", opts: SaveOptions{}, autoThresh: 1 << 20,
			dataFile: "model.onnx.data", external: []string{"fc.weight", "big", "odd"}},
		{name: "below the automatic limit", opts: SaveOptions{}, autoThresh: 8 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.autoThresh > 0 {
				old := autoExternalBytes
				autoExternalBytes = tt.autoThresh
				t.Cleanup(func() { autoExternalBytes = old })
			}
			m := bigModel(t)
			before := proto.Clone(m.Proto)
			dir := t.TempDir()
			path := filepath.Join(dir, "model.onnx")
			if err := Save(m, path, tt.opts); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m.Proto, before) {
				t.Fatal("Save changed the caller's model")
			}
			noTempFiles(t, dir)

			ext := externalInfo(t, path)
			if len(ext) != len(tt.external) {
				t.Errorf("external tensors %v, want %v", ext, tt.external)
			}
			if tt.dataFile == "" {
				if _, err := os.Stat(path + ".data"); err == nil {
					t.Error("data file written for an inline model")
				}
			} else if _, err := os.Stat(filepath.Join(dir, tt.dataFile)); err != nil {
				t.Errorf("data file: %v", err)
			}
			for _, name := range tt.external {
				e, ok := ext[name]
				if !ok {
					t.Errorf("%s not external", name)
					continue
				}
				off, _ := strconv.ParseInt(e[1], 10, 64)
				length, _ := strconv.ParseInt(e[2], 10, 64)
				align := int64(ExternalAlignment)
				if length >= 1<<20 {
					align = ExternalPageAlignment
				}
				if e[0] != tt.dataFile || off%align != 0 {
					t.Errorf("%s: location %q offset %d, want %q aligned to %d", name, e[0], off, tt.dataFile, align)
				}
			}

			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.Path != path {
				t.Errorf("Path = %q", got.Path)
			}
			want := rawByName(m.Proto.Graph)
			for name, raw := range rawByName(got.Proto.Graph) {
				if !bytes.Equal(raw, want[name]) {
					t.Errorf("%s: bytes differ after round trip", name)
				}
			}
			for _, init := range got.Proto.Graph.Initializer {
				if IsExternal(init) || init.ExternalData != nil {
					t.Errorf("%s still external after Load", init.GetName())
				}
			}
			if !proto.Equal(got.Proto, m.Proto) {
				t.Error("loaded model differs from the saved one")
			}
			if err := Check(got); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSaveOverwrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	m := bigModel(t)
	for range 2 {
		if err := Save(m, path, SaveOptions{ExternalData: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	noTempFiles(t, dir)
}

func TestSaveErrors(t *testing.T) {
	dir := t.TempDir()
	// A model loaded without its external data cannot be saved.
	src := filepath.Join(dir, "src.onnx")
	if err := Save(bigModel(t), src, SaveOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	skipped, err := LoadWith(src, LoadOptions{SkipExternalData: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TensorFloat32(initializer(t, skipped.Proto.Graph, "fc.weight")); !errors.Is(err, ErrExternalNotLoaded) {
		t.Errorf("decoding a skipped tensor: %v", err)
	}
	tests := []struct {
		name string
		m    *Model
		path string
		opts SaveOptions
		want string
	}{
		{"unresolved external data", skipped, filepath.Join(dir, "out.onnx"), SaveOptions{}, `tensor "fc.weight": tensor data is in an external file that was not loaded`},
		{"external file outside the directory", bigModel(t), filepath.Join(dir, "out.onnx"), SaveOptions{ExternalData: true, ExternalFile: "../w.bin"}, "must be a relative path"},
		{"external file is the model", bigModel(t), filepath.Join(dir, "out.onnx"), SaveOptions{ExternalData: true, ExternalFile: "out.onnx"}, "other than the model file"},
		{"missing directory", bigModel(t), filepath.Join(dir, "no", "out.onnx"), SaveOptions{ExternalData: true}, "no such file or directory"},
		{"nil model", nil, filepath.Join(dir, "out.onnx"), SaveOptions{}, "nil model"},
		{"no graph", &Model{Proto: &onnxpb.ModelProto{}}, filepath.Join(dir, "out.onnx"), SaveOptions{}, "no graph"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Save(tt.m, tt.path, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("err = %v, want %q naming %s", err, tt.want, tt.path)
			}
			if _, err := os.Stat(tt.path); err == nil {
				t.Error("model written despite the error")
			}
			noTempFiles(t, dir)
		})
	}
}
