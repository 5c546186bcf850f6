package onnx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// externalModel returns a model whose "fc.weight" (4x4 FLOAT, 64 bytes) is
// stored externally at location, offset and length (empty: entry left out).
func externalModel(t testing.TB, location, offset, length string) []byte {
	t.Helper()
	m := buildBlock(t, 4)
	w := initializer(t, m.Proto.Graph, "fc.weight")
	w.RawData = nil
	w.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: ptr("location"), Value: ptr(location)}}
	if offset != "" {
		w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: ptr("offset"), Value: ptr(offset)})
	}
	if length != "" {
		w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: ptr("length"), Value: ptr(length)})
	}
	data, err := proto.Marshal(m.Proto)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadExternalEntries(t *testing.T) {
	dir := t.TempDir()
	blob := make([]byte, 200)
	for i := range blob {
		blob[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "w.bin"), blob[:64], 0o644)
	tests := []struct {
		name, location, offset, length string
		want                           []byte
	}{
		{"offset and length", "w.bin", "64", "64", blob[64:128]},
		{"no offset", "w.bin", "", "64", blob[:64]},
		{"subdirectory, no length", "sub/w.bin", "", "", blob[:64]},
		{"dot path", "./sub/../w.bin", "128", "64", blob[128:192]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "m.onnx")
			os.WriteFile(path, externalModel(t, tt.location, tt.offset, tt.length), 0o644)
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			w := initializer(t, m.Proto.Graph, "fc.weight")
			if string(w.RawData) != string(tt.want) || w.ExternalData != nil || w.DataLocation != nil {
				t.Errorf("tensor = %v", w)
			}
			if err := Check(m); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	valid, err := proto.Marshal(buildBlock(t, 16).Proto)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "short.bin"), make([]byte, 100), 0o644)
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)

	tests := []struct {
		name    string
		file    string // written with data unless data is nil
		data    []byte
		want    string
		is      []error
		isntDir bool
	}{
		{name: "truncated", file: "truncated.onnx", data: valid[:len(valid)/2],
			want: "not a valid ONNX model (truncated, or not an ONNX file)", is: []error{ErrInvalidModel}},
		{name: "truncated by one byte", file: "truncated1.onnx", data: valid[:len(valid)-1],
			want: "not a valid ONNX model", is: []error{ErrInvalidModel}},
		{name: "empty", file: "empty.onnx", data: []byte{},
			want: "not a valid ONNX model: file is empty", is: []error{ErrInvalidModel}},
		{name: "random text", file: "text.onnx", data: []byte("hello, this is not an ONNX model at all\n"),
			want: "not a valid ONNX model", is: []error{ErrInvalidModel}},
		{name: "json", file: "model.json", data: []byte(`{"graph": {"node": []}}`),
			want: "not a valid ONNX model", is: []error{ErrInvalidModel}},
		{name: "protobuf without graph", file: "nograph.onnx", data: []byte{0x08, 0x0a}, // ir_version = 10
			want: "not a valid ONNX model: no graph", is: []error{ErrInvalidModel}},
		{name: "directory", file: "adir",
			want: "is a directory", is: []error{ErrInvalidModel}},
		{name: "missing model file", file: "nope.onnx",
			want: "no such file or directory", is: []error{fs.ErrNotExist}},
		{name: "external file missing", file: "missing.onnx", data: externalModel(t, "gone.bin", "0", "64"),
			want: `external data "gone.bin" for tensor "fc.weight": open`, is: []error{ErrExternalData, fs.ErrNotExist}},
		{name: "external file too short", file: "short.onnx", data: externalModel(t, "short.bin", "64", "64"),
			want: `external data "short.bin" for tensor "fc.weight": file is 100 bytes, need offset 64 + length 64`, is: []error{ErrExternalData}},
		{name: "external offset past the end", file: "past.onnx", data: externalModel(t, "short.bin", "1000", ""),
			want: `file is 100 bytes, need offset 1000`, is: []error{ErrExternalData}},
		{name: "external length mismatch", file: "len.onnx", data: externalModel(t, "short.bin", "0", "60"),
			want: `length is 60 bytes, dims [4 4] of FLOAT need 64`, is: []error{ErrExternalData}},
		{name: "external absolute path", file: "abs.onnx", data: externalModel(t, "/etc/passwd", "0", "64"),
			want: "location must be a relative path inside the model's directory", is: []error{ErrExternalData}},
		{name: "external escapes with ..", file: "dotdot.onnx", data: externalModel(t, "../short.bin", "0", "64"),
			want: "location must be a relative path inside the model's directory", is: []error{ErrExternalData}},
		{name: "external is a directory", file: "dirloc.onnx", data: externalModel(t, "adir", "0", "64"),
			want: "adir is not a regular file", is: []error{ErrExternalData}},
		{name: "external bad offset", file: "badoff.onnx", data: externalModel(t, "short.bin", "-4", "64"),
			want: `offset "-4" is not a non-negative integer`, is: []error{ErrExternalData}},
		{name: "external no location", file: "noloc.onnx", data: externalModel(t, "", "0", "64"),
			want: "no location entry", is: []error{ErrExternalData}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if tt.data != nil {
				if err := os.WriteFile(path, tt.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, err := Load(path)
			if err == nil {
				t.Fatalf("loaded %v", m)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "load "+path+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("err = %q, want %q naming %s", msg, tt.want, path)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("%v is not %v", err, target)
				}
			}
		})
	}
}

// TestLoadExternalErrorMessage checks the complete message of the most
// common failure.
func TestLoadExternalErrorMessage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 100), 0o644)
	m := buildBlock(t, 4)
	w := initializer(t, m.Proto.Graph, "fc.weight")
	w.Dims = []int64{10, 10}
	w.RawData = make([]byte, 400)
	if err := Save(m, path, SaveOptions{ExternalData: true, ExternalFile: "w.bin", SizeThreshold: 400}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 100), 0o644) // truncate the data file
	_, err := Load(path)
	want := "load " + path + `: external data "w.bin" for tensor "fc.weight": file is 100 bytes, need offset 0 + length 400`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

func TestLoadSkipExternalData(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	os.WriteFile(path, externalModel(t, "gone.bin", "0", "64"), 0o644)
	m, err := LoadWith(path, LoadOptions{SkipExternalData: true})
	if err != nil {
		t.Fatal(err)
	}
	w := initializer(t, m.Proto.Graph, "fc.weight")
	if !IsExternal(w) || w.RawData != nil {
		t.Errorf("tensor resolved: %v", w)
	}
	if err := Check(m); err != nil {
		t.Errorf("Check of a skipped model: %v", err)
	}
	if s := m.Stats(); s.Params != 4*4+3*4 {
		t.Errorf("Params = %d", s.Params)
	}
}

// TestLoadOverlappingRegions: tensors may not ask for more bytes than their
// files hold, which bounds memory on hostile files.
func TestLoadOverlappingRegions(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 64), 0o644)
	m := buildBlock(t, 4)
	for _, name := range []string{"fc.weight", "fc.bias"} {
		w := initializer(t, m.Proto.Graph, name)
		w.Dims = []int64{16}
		w.RawData = nil
		w.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: ptr("location"), Value: ptr("w.bin")}}
	}
	data, _ := proto.Marshal(m.Proto)
	path := filepath.Join(dir, "m.onnx")
	os.WriteFile(path, data, 0o644)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "tensors ask for more bytes than their files hold") {
		t.Errorf("err = %v", err)
	}
}
