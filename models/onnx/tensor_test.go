package onnx

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

func TestDataTypeSizes(t *testing.T) {
	tests := []struct {
		dt         DataType
		bits, size int
		name       string
	}{
		{Float, 32, 4, "FLOAT"},
		{Float16, 16, 2, "FLOAT16"},
		{BFloat16, 16, 2, "BFLOAT16"},
		{Int64, 64, 8, "INT64"},
		{Int8, 8, 1, "INT8"},
		{Uint8, 8, 1, "UINT8"},
		{Bool, 8, 1, "BOOL"},
		{Double, 64, 8, "DOUBLE"},
		{Complex128, 128, 16, "COMPLEX128"},
		{Int4, 4, 0, "INT4"},
		{Uint4, 4, 0, "UINT4"},
		{String, 0, 0, "STRING"},
		{Undefined, 0, 0, "UNDEFINED"},
		{DataType(99), 0, 0, "DataType(99)"},
	}
	for _, tt := range tests {
		if tt.dt.Bits() != tt.bits || tt.dt.Size() != tt.size || tt.dt.String() != tt.name {
			t.Errorf("%v: Bits %d Size %d String %q, want %d %d %q", int32(tt.dt), tt.dt.Bits(), tt.dt.Size(), tt.dt.String(), tt.bits, tt.size, tt.name)
		}
	}
	for _, tt := range []struct {
		dt   DataType
		n    int64
		want int64
	}{
		{Float, 10, 40}, {Int4, 0, 0}, {Int4, 1, 1}, {Int4, 3, 2}, {Uint4, 4, 2}, {Float16, 3, 6},
	} {
		if got, err := tt.dt.ByteSize(tt.n); err != nil || got != tt.want {
			t.Errorf("%v.ByteSize(%d) = %d, %v; want %d", tt.dt, tt.n, got, err, tt.want)
		}
	}
	if _, err := String.ByteSize(1); err == nil {
		t.Error("STRING.ByteSize: no error")
	}
	if _, err := Double.ByteSize(math.MaxInt64 / 4); err == nil {
		t.Error("ByteSize overflow: no error")
	}
}

func TestNumel(t *testing.T) {
	tests := []struct {
		dims    []int64
		want    int64
		wantErr bool
	}{
		{nil, 1, false},
		{[]int64{2, 3, 4}, 24, false},
		{[]int64{0, 1 << 62}, 0, false},
		{[]int64{-1, 2}, 0, true},
		{[]int64{1 << 32, 1 << 32}, 0, true},
	}
	for _, tt := range tests {
		got, err := Numel(tt.dims)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Numel(%v) = %d, %v; want %d, error %v", tt.dims, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestTensorRoundTrip(t *testing.T) {
	dims := []int64{2, 3}
	f32 := []float32{0, 1, -1.5, float32(math.Inf(1)), 1e-30, 3}
	tf, err := NewTensorFloat32("f", dims, f32)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := TensorFloat32(tf); err != nil || !slices.Equal(got, f32) {
		t.Errorf("float32: %v, %v", got, err)
	}
	f16 := Float32sToFloat16s(f32)
	th, _ := NewTensorFloat16("h", dims, f16)
	if got, err := TensorFloat16(th); err != nil || !slices.Equal(got, f16) {
		t.Errorf("float16: %v, %v", got, err)
	}
	i64 := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64, 7}
	ti, _ := NewTensorInt64("i", dims, i64)
	if got, err := TensorInt64(ti); err != nil || !slices.Equal(got, i64) {
		t.Errorf("int64: %v, %v", got, err)
	}
	i32 := []int32{math.MinInt32, -1, 0, 1, math.MaxInt32, 7}
	t32, _ := NewTensorInt32("i32", dims, i32)
	if got, err := TensorInt32(t32); err != nil || !slices.Equal(got, i32) {
		t.Errorf("int32: %v, %v", got, err)
	}
	i8 := []int8{-128, -1, 0, 1, 127, 5}
	t8, _ := NewTensorInt8("i8", dims, i8)
	if got, err := TensorInt8(t8); err != nil || !slices.Equal(got, i8) {
		t.Errorf("int8: %v, %v", got, err)
	}
	u8 := []uint8{0, 1, 2, 128, 255, 9}
	tu8, _ := NewTensorUint8("u8", dims, u8)
	if got, err := TensorUint8(tu8); err != nil || !slices.Equal(got, u8) {
		t.Errorf("uint8: %v, %v", got, err)
	}
	i4 := []int8{-8, -1, 0, 1, 7}
	t4, _ := NewTensorInt4("i4", []int64{5}, i4)
	if len(t4.RawData) != 3 {
		t.Errorf("int4 raw_data is %d bytes, want 3", len(t4.RawData))
	}
	if got, err := TensorInt4(t4); err != nil || !slices.Equal(got, i4) {
		t.Errorf("int4: %v, %v", got, err)
	}
	u4 := []uint8{0, 15, 3}
	tu4, _ := NewTensorUint4("u4", []int64{3}, u4)
	if got, err := TensorUint4(tu4); err != nil || !slices.Equal(got, u4) {
		t.Errorf("uint4: %v, %v", got, err)
	}
	scalar, _ := NewTensorFloat32("s", nil, []float32{2})
	if got, err := TensorFloat32(scalar); err != nil || !slices.Equal(got, []float32{2}) {
		t.Errorf("scalar: %v, %v", got, err)
	}
	empty, _ := NewTensorFloat32("e", []int64{0, 4}, nil)
	if got, err := TensorFloat32(empty); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
}

func TestTensorTypedFields(t *testing.T) {
	tf := &onnxpb.TensorProto{Name: ptr("f"), DataType: ptr(int32(Float)), Dims: []int64{2}, FloatData: []float32{1, 2}}
	if got, err := TensorFloat32(tf); err != nil || !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("float_data: %v, %v", got, err)
	}
	th := &onnxpb.TensorProto{DataType: ptr(int32(Float16)), Dims: []int64{2}, Int32Data: []int32{0x3c00, 0xc000}}
	if got, err := TensorFloat16(th); err != nil || !slices.Equal(got, []uint16{0x3c00, 0xc000}) {
		t.Errorf("float16 int32_data: %v, %v", got, err)
	}
	t8 := &onnxpb.TensorProto{DataType: ptr(int32(Int8)), Dims: []int64{2}, Int32Data: []int32{-5, 100}}
	if got, err := TensorInt8(t8); err != nil || !slices.Equal(got, []int8{-5, 100}) {
		t.Errorf("int8 int32_data: %v, %v", got, err)
	}
	ti := &onnxpb.TensorProto{DataType: ptr(int32(Int64)), Dims: []int64{1}, Int64Data: []int64{-9}}
	if got, err := TensorInt64(ti); err != nil || !slices.Equal(got, []int64{-9}) {
		t.Errorf("int64_data: %v, %v", got, err)
	}
	t4 := &onnxpb.TensorProto{DataType: ptr(int32(Int4)), Dims: []int64{3}, Int32Data: []int32{0xf1, 0x07}}
	if got, err := TensorInt4(t4); err != nil || !slices.Equal(got, []int8{1, -1, 7}) {
		t.Errorf("int4 int32_data: %v, %v", got, err)
	}
}

func TestTensorErrors(t *testing.T) {
	f16, _ := NewTensorFloat16("h", []int64{1}, []uint16{0})
	short := &onnxpb.TensorProto{Name: ptr("w"), DataType: ptr(int32(Float)), Dims: []int64{4}, RawData: make([]byte, 12)}
	typed := &onnxpb.TensorProto{Name: ptr("w"), DataType: ptr(int32(Float)), Dims: []int64{4}, FloatData: []float32{1}}
	huge := &onnxpb.TensorProto{Name: ptr("w"), DataType: ptr(int32(Float)), Dims: []int64{1 << 40, 1 << 40}, RawData: []byte{}}
	ext := &onnxpb.TensorProto{Name: ptr("w"), DataType: ptr(int32(Float)), Dims: []int64{1},
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{{Key: ptr("location"), Value: ptr("w.bin")}}}
	tests := []struct {
		name string
		t    *onnxpb.TensorProto
		want string
	}{
		{"wrong type", f16, `tensor "h": data type FLOAT16, want FLOAT`},
		{"short raw_data", short, `tensor "w": raw_data is 12 bytes, dims [4] of FLOAT need 16`},
		{"short float_data", typed, `float_data has 1 entries, dims [4] of FLOAT need 4`},
		{"huge dims", huge, "overflow"},
		{"external", ext, "external file that was not loaded"},
		{"nil", nil, "nil tensor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := TensorFloat32(tt.t)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := TensorFloat32(ext); !errors.Is(err, ErrExternalNotLoaded) {
		t.Errorf("external: %v is not ErrExternalNotLoaded", err)
	}
	if _, err := NewTensorFloat32("x", []int64{2, 2}, []float32{1}); err == nil || !strings.Contains(err.Error(), `tensor "x": 1 values, dims [2 2] need 4`) {
		t.Errorf("NewTensorFloat32 mismatch: %v", err)
	}
	if _, err := NewTensorRaw("x", Int4, []int64{3}, []byte{1}); err == nil {
		t.Error("NewTensorRaw with short int4 data: no error")
	}
}

func TestPackInt4(t *testing.T) {
	tests := []struct {
		vals   []int8
		packed []byte
	}{
		{nil, []byte{}},
		{[]int8{1}, []byte{0x01}},
		{[]int8{1, -1}, []byte{0xf1}},
		{[]int8{-8, 7, 3}, []byte{0x78, 0x03}},
		{[]int8{0, -8, -1, 0}, []byte{0x80, 0x0f}},
	}
	for _, tt := range tests {
		got := PackInt4(tt.vals)
		if !slices.Equal(got, tt.packed) {
			t.Errorf("PackInt4(%v) = %x, want %x", tt.vals, got, tt.packed)
		}
		back := UnpackInt4(got, len(tt.vals))
		if len(tt.vals) > 0 && !slices.Equal(back, tt.vals) {
			t.Errorf("UnpackInt4(%x) = %v, want %v", got, back, tt.vals)
		}
	}
	all := make([]int8, 16)
	for i := range all {
		all[i] = int8(i - 8)
	}
	if got := UnpackInt4(PackInt4(all), 16); !slices.Equal(got, all) {
		t.Errorf("int4 round trip: %v", got)
	}
	u := []uint8{0, 15, 1, 14, 9}
	if got := PackUint4(u); !slices.Equal(got, []byte{0xf0, 0xe1, 0x09}) {
		t.Errorf("PackUint4 = %x", got)
	}
	if got := UnpackUint4(PackUint4(u), len(u)); !slices.Equal(got, u) {
		t.Errorf("uint4 round trip: %v", got)
	}
	if got := UnpackInt4([]byte{0xff}, 4); !slices.Equal(got, []int8{-1, -1, 0, 0}) {
		t.Errorf("UnpackInt4 past the data = %v", got)
	}
	if got := UnpackUint4(nil, -1); len(got) != 0 {
		t.Errorf("UnpackUint4(nil, -1) = %v", got)
	}
}
