// Package onnx is quantscope's ONNX IR layer: it loads and saves ONNX models
// (with tensors stored inline or in external data files), builds graphs from
// Go code, sorts and checks them, and converts tensor data between protobuf
// and Go slices.
//
// The protobuf types live in the onnxpb subpackage; this package works on
// them directly. A [Model] is an *onnxpb.ModelProto plus the path it was
// loaded from.
//
// Loading: [Load] reads a .onnx file and resolves every tensor stored in an
// external file (data_location = EXTERNAL) into raw_data, so callers only
// ever see plain tensors. External locations must be relative paths inside
// the model's directory; anything else is rejected. [LoadWith] with
// SkipExternalData reads the graph alone.
//
// Saving: [Save] writes a model atomically (temporary files renamed into
// place). Large initializers can go to an external data file, and do so
// automatically when the tensors would not fit in one protobuf message
// (the 2 GB limit). External tensors start at offsets aligned to
// [ExternalAlignment] bytes, and tensors of at least 1 MiB at offsets aligned
// to [ExternalPageAlignment] bytes, so ONNX Runtime can memory-map them.
//
// Building: [NewBuilder] assembles a graph node by node and [Builder.Build]
// returns a checked model. [TopoSort] orders a graph's nodes and [Check]
// reports what ONNX Runtime would reject: undefined or duplicate names,
// missing opset imports, tensors whose data does not match their shape.
//
// Tensors: [DataType] describes element types; TensorFloat32 and friends
// decode tensor data, NewTensorFloat32 and friends encode it; [Float32ToFloat16]
// and [Float16ToFloat32] convert half precision with round-to-nearest-even;
// [PackInt4] and [UnpackInt4] pack 4-bit integers two to a byte.
//
// Nothing in this package panics on malformed input: every problem with a
// file or a graph is an error that names the file, tensor or node involved.
package onnx
