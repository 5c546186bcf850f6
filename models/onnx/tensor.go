package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// DataType is the element type of a tensor. Its values are those of
// onnxpb.TensorProto_DataType, the int32 stored in TensorProto.data_type and
// TypeProto.Tensor.elem_type.
type DataType int32

// The ONNX element types.
const (
	Undefined      = DataType(onnxpb.TensorProto_UNDEFINED)
	Float          = DataType(onnxpb.TensorProto_FLOAT) // float32
	Uint8          = DataType(onnxpb.TensorProto_UINT8)
	Int8           = DataType(onnxpb.TensorProto_INT8)
	Uint16         = DataType(onnxpb.TensorProto_UINT16)
	Int16          = DataType(onnxpb.TensorProto_INT16)
	Int32          = DataType(onnxpb.TensorProto_INT32)
	Int64          = DataType(onnxpb.TensorProto_INT64)
	String         = DataType(onnxpb.TensorProto_STRING)
	Bool           = DataType(onnxpb.TensorProto_BOOL)
	Float16        = DataType(onnxpb.TensorProto_FLOAT16)
	Double         = DataType(onnxpb.TensorProto_DOUBLE) // float64
	Uint32         = DataType(onnxpb.TensorProto_UINT32)
	Uint64         = DataType(onnxpb.TensorProto_UINT64)
	Complex64      = DataType(onnxpb.TensorProto_COMPLEX64)
	Complex128     = DataType(onnxpb.TensorProto_COMPLEX128)
	BFloat16       = DataType(onnxpb.TensorProto_BFLOAT16)
	Float8E4M3FN   = DataType(onnxpb.TensorProto_FLOAT8E4M3FN)
	Float8E4M3FNUZ = DataType(onnxpb.TensorProto_FLOAT8E4M3FNUZ)
	Float8E5M2     = DataType(onnxpb.TensorProto_FLOAT8E5M2)
	Float8E5M2FNUZ = DataType(onnxpb.TensorProto_FLOAT8E5M2FNUZ)
	Uint4          = DataType(onnxpb.TensorProto_UINT4) // two per byte, low nibble first
	Int4           = DataType(onnxpb.TensorProto_INT4)  // two per byte, low nibble first
	Float4E2M1     = DataType(onnxpb.TensorProto_FLOAT4E2M1)
)

// ErrExternalNotLoaded is returned when tensor data is read from a tensor
// whose bytes are still in an external file (a model loaded with
// LoadOptions.SkipExternalData).
var ErrExternalNotLoaded = errors.New("tensor data is in an external file that was not loaded")

// DataTypeOf returns the element type of t.
func DataTypeOf(t *onnxpb.TensorProto) DataType { return DataType(t.GetDataType()) }

// Proto returns t as the generated enum type.
func (t DataType) Proto() onnxpb.TensorProto_DataType { return onnxpb.TensorProto_DataType(t) }

// String returns the ONNX name of the type, e.g. "FLOAT16".
func (t DataType) String() string {
	if _, ok := onnxpb.TensorProto_DataType_name[int32(t)]; ok {
		return onnxpb.TensorProto_DataType(t).String()
	}
	return fmt.Sprintf("DataType(%d)", int32(t))
}

// Bits returns the width of one element in bits, or 0 for types without a
// fixed width (UNDEFINED, STRING, and values this package does not know).
func (t DataType) Bits() int {
	switch t {
	case Uint4, Int4, Float4E2M1:
		return 4
	case Uint8, Int8, Bool, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ:
		return 8
	case Uint16, Int16, Float16, BFloat16:
		return 16
	case Float, Int32, Uint32:
		return 32
	case Int64, Uint64, Double, Complex64:
		return 64
	case Complex128:
		return 128
	}
	return 0
}

// Size returns the size of one element in bytes. It is 0 for sub-byte types
// (INT4, UINT4, FLOAT4E2M1) and for types without a fixed width; use
// ByteSize for the storage of n elements.
func (t DataType) Size() int { return t.Bits() / 8 }

// Valid reports whether t is a known type with a fixed width or STRING.
func (t DataType) Valid() bool { return t == String || t.Bits() > 0 }

// ByteSize returns how many bytes n elements of type t occupy in raw_data:
// n*Bits/8, rounded up for sub-byte types (n 4-bit values take ceil(n/2)
// bytes). It fails for types without a fixed width and on overflow.
func (t DataType) ByteSize(n int64) (int64, error) {
	bits := int64(t.Bits())
	if bits == 0 {
		return 0, fmt.Errorf("data type %v has no fixed element size", t)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative element count %d", n)
	}
	if n > (math.MaxInt64-7)/bits {
		return 0, fmt.Errorf("%d elements of %v overflow int64 bytes", n, t)
	}
	return (n*bits + 7) / 8, nil
}

// Numel returns the number of elements of a tensor with the given dims (1
// for a scalar, whose dims are empty). Negative dims and products that
// overflow int64 are errors.
func Numel(dims []int64) (int64, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in %v", d, dims)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("dims %v overflow int64 elements", dims)
		}
		n *= d
	}
	return n, nil
}

// TensorNumel returns the number of elements of t from its dims.
func TensorNumel(t *onnxpb.TensorProto) (int64, error) {
	n, err := Numel(t.GetDims())
	if err != nil {
		return 0, fmt.Errorf("tensor %q: %w", t.GetName(), err)
	}
	return n, nil
}

// IsExternal reports whether t's data is stored in an external file.
func IsExternal(t *onnxpb.TensorProto) bool {
	return t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
}

// typedCount returns how many entries of t's typed data field (float_data,
// int32_data, ...) its data type uses, the name of that field, and the number
// of entries that n elements need.
func typedCount(t *onnxpb.TensorProto, dt DataType, n int64) (have int, field string, want int64) {
	switch dt {
	case Float:
		return len(t.GetFloatData()), "float_data", n
	case Complex64:
		return len(t.GetFloatData()), "float_data", 2 * n
	case Int32, Int16, Int8, Uint16, Uint8, Bool, Float16, BFloat16,
		Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ:
		return len(t.GetInt32Data()), "int32_data", n
	case Int4, Uint4, Float4E2M1:
		return len(t.GetInt32Data()), "int32_data", (n + 1) / 2
	case Int64:
		return len(t.GetInt64Data()), "int64_data", n
	case Double:
		return len(t.GetDoubleData()), "double_data", n
	case Complex128:
		return len(t.GetDoubleData()), "double_data", 2 * n
	case Uint32, Uint64:
		return len(t.GetUint64Data()), "uint64_data", n
	case String:
		return len(t.GetStringData()), "string_data", n
	}
	return 0, "", 0
}

// tensorDataError reports why t's data does not match its dims and data
// type, or nil when it does. External tensors are checked only when their
// length entry is present.
func tensorDataError(t *onnxpb.TensorProto) error {
	dt := DataTypeOf(t)
	if !dt.Valid() {
		return fmt.Errorf("unsupported data type %v", dt)
	}
	n, err := Numel(t.GetDims())
	if err != nil {
		return err
	}
	if IsExternal(t) {
		if _, ok := externalEntry(t, "location"); !ok {
			return errors.New("external data has no location")
		}
		if s, ok := externalEntry(t, "length"); ok && dt != String {
			want, err := dt.ByteSize(n)
			if err != nil {
				return err
			}
			got, err := strconv.ParseInt(s, 10, 64)
			if err != nil || got != want {
				return fmt.Errorf("external data length is %q bytes, dims %v of %v need %d", s, t.GetDims(), dt, want)
			}
		}
		return nil
	}
	if t.RawData != nil {
		if dt == String {
			return errors.New("STRING tensor has raw_data; strings must use string_data")
		}
		want, err := dt.ByteSize(n)
		if err != nil {
			return err
		}
		if int64(len(t.RawData)) != want {
			return fmt.Errorf("raw_data is %d bytes, dims %v of %v need %d", len(t.RawData), t.GetDims(), dt, want)
		}
		return nil
	}
	have, field, want := typedCount(t, dt, n)
	if int64(have) != want {
		return fmt.Errorf("%s has %d entries, dims %v of %v need %d", field, have, t.GetDims(), dt, want)
	}
	return nil
}

// checkTensor validates t as type want before decoding; it returns the
// element count.
func checkTensor(t *onnxpb.TensorProto, want DataType) (int64, error) {
	if t == nil {
		return 0, errors.New("nil tensor")
	}
	if dt := DataTypeOf(t); dt != want {
		return 0, fmt.Errorf("tensor %q: data type %v, want %v", t.GetName(), dt, want)
	}
	if IsExternal(t) {
		return 0, fmt.Errorf("tensor %q: %w", t.GetName(), ErrExternalNotLoaded)
	}
	if err := tensorDataError(t); err != nil {
		return 0, fmt.Errorf("tensor %q: %w", t.GetName(), err)
	}
	return Numel(t.GetDims())
}

// TensorFloat32 decodes a FLOAT tensor from raw_data or float_data.
func TensorFloat32(t *onnxpb.TensorProto) ([]float32, error) {
	n, err := checkTensor(t, Float)
	if err != nil {
		return nil, err
	}
	if t.RawData == nil {
		return append([]float32(nil), t.FloatData...), nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
	}
	return out, nil
}

// TensorFloat64 decodes a DOUBLE tensor from raw_data or double_data.
func TensorFloat64(t *onnxpb.TensorProto) ([]float64, error) {
	n, err := checkTensor(t, Double)
	if err != nil {
		return nil, err
	}
	if t.RawData == nil {
		return append([]float64(nil), t.DoubleData...), nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.RawData[8*i:]))
	}
	return out, nil
}

// ByteValue returns a tensor's elements as raw little-endian bytes, as
// raw_data holds them, whichever field stores them (types of 8 bits or
// more).
func ByteValue(t *onnxpb.TensorProto) ([]byte, error) {
	if t.RawData != nil {
		return t.RawData, nil
	}
	dt := DataTypeOf(t)
	n, err := TensorNumel(t)
	if err != nil {
		return nil, err
	}
	size := dt.Size()
	if size == 0 || dt == String {
		return nil, fmt.Errorf("tensor %s: no byte form for %v", t.GetName(), dt)
	}
	out := make([]byte, 0, int(n)*size)
	put := func(v uint64) {
		for b := range size {
			out = append(out, byte(v>>(8*b)))
		}
	}
	switch dt {
	case Float:
		for _, v := range t.FloatData {
			put(uint64(math.Float32bits(v)))
		}
	case Double:
		for _, v := range t.DoubleData {
			put(math.Float64bits(v))
		}
	case Int64:
		for _, v := range t.Int64Data {
			put(uint64(v))
		}
	case Uint32, Uint64:
		for _, v := range t.Uint64Data {
			put(v)
		}
	default: // int32, int16, int8, uint16, uint8, bool, float16, bfloat16
		for _, v := range t.Int32Data {
			put(uint64(uint32(v)))
		}
	}
	if int64(len(out)) != n*int64(size) {
		return nil, fmt.Errorf("tensor %s: %d bytes for %d %v values", t.GetName(), len(out), n, dt)
	}
	return out, nil
}

// TensorFloat16 decodes a FLOAT16 tensor into IEEE half-precision bit
// patterns, from raw_data or int32_data. Convert them with Float16ToFloat32.
func TensorFloat16(t *onnxpb.TensorProto) ([]uint16, error) {
	n, err := checkTensor(t, Float16)
	if err != nil {
		return nil, err
	}
	out := make([]uint16, n)
	if t.RawData == nil {
		for i, v := range t.Int32Data {
			out[i] = uint16(v)
		}
		return out, nil
	}
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(t.RawData[2*i:])
	}
	return out, nil
}

// TensorInt64 decodes an INT64 tensor from raw_data or int64_data.
func TensorInt64(t *onnxpb.TensorProto) ([]int64, error) {
	n, err := checkTensor(t, Int64)
	if err != nil {
		return nil, err
	}
	if t.RawData == nil {
		return append([]int64(nil), t.Int64Data...), nil
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.RawData[8*i:]))
	}
	return out, nil
}

// TensorInt32 decodes an INT32 tensor from raw_data or int32_data.
func TensorInt32(t *onnxpb.TensorProto) ([]int32, error) {
	n, err := checkTensor(t, Int32)
	if err != nil {
		return nil, err
	}
	if t.RawData == nil {
		return append([]int32(nil), t.Int32Data...), nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.RawData[4*i:]))
	}
	return out, nil
}

// TensorInt8 decodes an INT8 tensor from raw_data or int32_data.
func TensorInt8(t *onnxpb.TensorProto) ([]int8, error) {
	n, err := checkTensor(t, Int8)
	if err != nil {
		return nil, err
	}
	out := make([]int8, n)
	if t.RawData == nil {
		for i, v := range t.Int32Data {
			out[i] = int8(v)
		}
		return out, nil
	}
	for i, b := range t.RawData {
		out[i] = int8(b)
	}
	return out, nil
}

// TensorUint8 decodes a UINT8 tensor from raw_data or int32_data.
func TensorUint8(t *onnxpb.TensorProto) ([]uint8, error) {
	n, err := checkTensor(t, Uint8)
	if err != nil {
		return nil, err
	}
	out := make([]uint8, n)
	if t.RawData == nil {
		for i, v := range t.Int32Data {
			out[i] = uint8(v)
		}
		return out, nil
	}
	copy(out, t.RawData)
	return out, nil
}

// TensorInt4 decodes an INT4 tensor into one sign-extended int8 per element.
func TensorInt4(t *onnxpb.TensorProto) ([]int8, error) {
	n, err := checkTensor(t, Int4)
	if err != nil {
		return nil, err
	}
	return UnpackInt4(packedBytes(t), int(n)), nil
}

// TensorUint4 decodes a UINT4 tensor into one uint8 (0..15) per element.
func TensorUint4(t *onnxpb.TensorProto) ([]uint8, error) {
	n, err := checkTensor(t, Uint4)
	if err != nil {
		return nil, err
	}
	return UnpackUint4(packedBytes(t), int(n)), nil
}

// packedBytes returns the packed bytes of a 4-bit tensor from raw_data or
// int32_data (one packed byte per int32 entry).
func packedBytes(t *onnxpb.TensorProto) []byte {
	if t.RawData != nil {
		return t.RawData
	}
	b := make([]byte, len(t.Int32Data))
	for i, v := range t.Int32Data {
		b[i] = byte(v)
	}
	return b
}

// NewTensorRaw returns a tensor of type dt whose raw_data is raw, which must
// hold exactly the bytes that dims need (see DataType.ByteSize). raw is used
// as is, not copied.
func NewTensorRaw(name string, dt DataType, dims []int64, raw []byte) (*onnxpb.TensorProto, error) {
	n, err := Numel(dims)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	want, err := dt.ByteSize(n)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	if int64(len(raw)) != want {
		return nil, fmt.Errorf("tensor %q: %d bytes of data, dims %v of %v need %d", name, len(raw), dims, dt, want)
	}
	if raw == nil {
		raw = []byte{}
	}
	return &onnxpb.TensorProto{
		Name:     &name,
		DataType: ptr(int32(dt)),
		Dims:     append([]int64{}, dims...),
		RawData:  raw,
	}, nil
}

// checkLen verifies that dims hold exactly n elements.
func checkLen(name string, dims []int64, n int) error {
	want, err := Numel(dims)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", name, err)
	}
	if want != int64(n) {
		return fmt.Errorf("tensor %q: %d values, dims %v need %d", name, n, dims, want)
	}
	return nil
}

// NewTensorFloat32 returns a FLOAT tensor holding data in raw_data.
func NewTensorFloat32(name string, dims []int64, data []float32) (*onnxpb.TensorProto, error) {
	if err := checkLen(name, dims, len(data)); err != nil {
		return nil, err
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return NewTensorRaw(name, Float, dims, raw)
}

// NewTensorFloat16 returns a FLOAT16 tensor from half-precision bit patterns
// (see Float32ToFloat16).
func NewTensorFloat16(name string, dims []int64, bits []uint16) (*onnxpb.TensorProto, error) {
	if err := checkLen(name, dims, len(bits)); err != nil {
		return nil, err
	}
	raw := make([]byte, 2*len(bits))
	for i, v := range bits {
		binary.LittleEndian.PutUint16(raw[2*i:], v)
	}
	return NewTensorRaw(name, Float16, dims, raw)
}

// NewTensorInt64 returns an INT64 tensor holding data in raw_data.
func NewTensorInt64(name string, dims []int64, data []int64) (*onnxpb.TensorProto, error) {
	if err := checkLen(name, dims, len(data)); err != nil {
		return nil, err
	}
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return NewTensorRaw(name, Int64, dims, raw)
}

// NewTensorInt32 returns an INT32 tensor holding data in raw_data.
func NewTensorInt32(name string, dims []int64, data []int32) (*onnxpb.TensorProto, error) {
	if err := checkLen(name, dims, len(data)); err != nil {
		return nil, err
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(v))
	}
	return NewTensorRaw(name, Int32, dims, raw)
}

// NewTensorInt8 returns an INT8 tensor holding data in raw_data.
func NewTensorInt8(name string, dims []int64, data []int8) (*onnxpb.TensorProto, error) {
	if err := checkLen(name, dims, len(data)); err != nil {
		return nil, err
	}
	raw := make([]byte, len(data))
	for i, v := range data {
		raw[i] = byte(v)
	}
	return NewTensorRaw(name, Int8, dims, raw)
}

// NewTensorUint8 returns a UINT8 tensor holding a copy of data in raw_data.
func NewTensorUint8(name string, dims []int64, data []uint8) (*onnxpb.TensorProto, error) {
	if err := checkLen(name, dims, len(data)); err != nil {
		return nil, err
	}
	return NewTensorRaw(name, Uint8, dims, append([]byte{}, data...))
}

// NewTensorInt4 returns an INT4 tensor from one value in -8..7 per element,
// packed two per byte (see PackInt4).
func NewTensorInt4(name string, dims []int64, vals []int8) (*onnxpb.TensorProto, error) {
	if err := checkLen(name, dims, len(vals)); err != nil {
		return nil, err
	}
	return NewTensorRaw(name, Int4, dims, PackInt4(vals))
}

// NewTensorUint4 returns a UINT4 tensor from one value in 0..15 per element,
// packed two per byte (see PackUint4).
func NewTensorUint4(name string, dims []int64, vals []uint8) (*onnxpb.TensorProto, error) {
	if err := checkLen(name, dims, len(vals)); err != nil {
		return nil, err
	}
	return NewTensorRaw(name, Uint4, dims, PackUint4(vals))
}

// PackInt4 packs signed 4-bit values two per byte, the first of each pair in
// the low nibble, as ONNX INT4 tensors and MatMulNBits weights store them.
// An odd count leaves the last high nibble zero. Values outside -8..7 are
// truncated to their low four bits; clamp them first.
func PackInt4(vals []int8) []byte {
	out := make([]byte, (len(vals)+1)/2)
	for i, v := range vals {
		out[i/2] |= (byte(v) & 0x0f) << (4 * (i & 1))
	}
	return out
}

// UnpackInt4 unpacks n signed 4-bit values from packed (low nibble first),
// sign-extending each. Values missing from a short packed slice are 0.
func UnpackInt4(packed []byte, n int) []int8 {
	out := make([]int8, max(n, 0))
	for i := range out {
		if i/2 >= len(packed) {
			break
		}
		nib := packed[i/2] >> (4 * (i & 1)) & 0x0f
		out[i] = int8(nib<<4) >> 4
	}
	return out
}

// PackUint4 packs unsigned 4-bit values two per byte, low nibble first.
// Values above 15 are truncated to their low four bits.
func PackUint4(vals []uint8) []byte {
	out := make([]byte, (len(vals)+1)/2)
	for i, v := range vals {
		out[i/2] |= (v & 0x0f) << (4 * (i & 1))
	}
	return out
}

// UnpackUint4 unpacks n unsigned 4-bit values from packed (low nibble
// first). Values missing from a short packed slice are 0.
func UnpackUint4(packed []byte, n int) []uint8 {
	out := make([]uint8, max(n, 0))
	for i := range out {
		if i/2 >= len(packed) {
			break
		}
		out[i] = packed[i/2] >> (4 * (i & 1)) & 0x0f
	}
	return out
}

// ptr returns a pointer to v, for proto2 optional fields.
func ptr[T any](v T) *T { return &v }
