package onnx

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// Layout of external data files written by Save.
const (
	// ExternalAlignment is the alignment of every tensor's offset in an
	// external data file, so tensors start on cache-line boundaries.
	ExternalAlignment = 64
	// ExternalPageAlignment is the alignment of tensors of at least 1 MiB,
	// a page on common systems, so ONNX Runtime can memory-map them in place.
	ExternalPageAlignment = 4096
	// DefaultSizeThreshold is the default SaveOptions.SizeThreshold.
	DefaultSizeThreshold = 1024

	pageAlignMin = 1 << 20
	// maxProtoBytes is the largest message protobuf implementations parse.
	maxProtoBytes = math.MaxInt32
)

// autoExternalBytes is the total tensor size above which Save writes
// external data even when not asked to: 1.9 GiB, safely below the 2 GiB
// protobuf limit. A variable so tests can lower it.
var autoExternalBytes int64 = 19 << 30 / 10

// ErrTooLarge is returned by Save when the model would not fit in one
// protobuf message (2 GiB) even after moving initializers out.
var ErrTooLarge = errors.New("model exceeds the 2 GiB protobuf limit")

// SaveOptions controls Save.
type SaveOptions struct {
	// ExternalData writes initializers of at least SizeThreshold bytes to
	// an external data file beside the model. Save does this anyway when
	// the model's tensors total more than about 1.9 GiB.
	ExternalData bool
	// ExternalFile is the data file's name, relative to the model's
	// directory; it defaults to the model file's name plus ".data".
	ExternalFile string
	// SizeThreshold is the size in bytes from which an initializer goes to
	// the external file; 0 means DefaultSizeThreshold (1024). Set 1 (or
	// any negative value) to move every non-empty initializer.
	SizeThreshold int
}

// Save writes m to path. With external data, initializers whose bytes are in
// raw_data and at least opts.SizeThreshold long are written to the data file
// at aligned offsets (ExternalAlignment, ExternalPageAlignment from 1 MiB),
// and the model records their location (the data file's name), offset and
// length. Tensors kept in typed fields (float_data, ...) and attribute
// tensors stay inline.
//
// Files are written to temporary names in the destination directory and
// renamed into place, the data file first, so a partly written model never
// appears under path. Tensor bytes are streamed from memory, not copied.
//
// Save leaves m as it was: it detaches the moved tensors' raw_data while it
// serializes the graph and restores it before returning, so m must not be
// used by another goroutine during Save. A model loaded with
// SkipExternalData cannot be saved.
func Save(m *Model, path string, opts SaveOptions) error {
	if err := save(m, path, opts); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// pending is a temporary file to rename into place or remove.
type pending struct{ tmp, final string }

func save(m *Model, path string, opts SaveOptions) (err error) {
	if m == nil || m.Proto == nil {
		return errors.New("nil model")
	}
	if m.Proto.GetGraph() == nil {
		return fmt.Errorf("%w: no graph", ErrInvalidModel)
	}
	var total int64
	if err := walkModelTensors(m.Proto, func(t *onnxpb.TensorProto) error {
		if IsExternal(t) {
			return fmt.Errorf("tensor %q: %w", t.GetName(), ErrExternalNotLoaded)
		}
		total += storedBytes(t)
		return nil
	}); err != nil {
		return err
	}

	dir, base := filepath.Dir(path), filepath.Base(path)
	var files []pending
	defer func() {
		if err != nil {
			for _, p := range files {
				if p.tmp != "" {
					os.Remove(p.tmp)
				}
			}
		}
	}()

	var moved []*onnxpb.TensorProto
	var layout []extent
	var location string
	if opts.ExternalData || total > autoExternalBytes {
		threshold := opts.SizeThreshold
		if threshold == 0 {
			threshold = DefaultSizeThreshold
		}
		threshold = max(threshold, 1) // empty tensors stay inline
		seen := map[*onnxpb.TensorProto]bool{}
		walkInitializers(m.Proto.GetGraph(), func(t *onnxpb.TensorProto) {
			if t.RawData != nil && len(t.RawData) >= threshold && !seen[t] {
				seen[t] = true
				moved = append(moved, t)
			}
		})
		if len(moved) > 0 {
			dataName := opts.ExternalFile
			if dataName == "" {
				dataName = base + ".data"
			}
			rel := filepath.Clean(filepath.FromSlash(dataName))
			if !filepath.IsLocal(rel) || rel == base {
				return fmt.Errorf("external file %q must be a relative path inside the model's directory, other than the model file", dataName)
			}
			location = filepath.ToSlash(rel)
			dataPath := filepath.Join(dir, rel)
			tmp, ext, err := writeExternal(dataPath, moved)
			if tmp != "" {
				files = append(files, pending{tmp, dataPath})
			}
			if err != nil {
				return err
			}
			layout = ext
		}
	}

	data, err := marshalDetached(m.Proto, moved, layout, location)
	if err != nil {
		return err
	}
	if len(data) > maxProtoBytes {
		return fmt.Errorf("%w: serialized model is %d bytes (tensors total %d bytes); save with ExternalData", ErrTooLarge, len(data), total)
	}
	tmp, err := writeTemp(path, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if tmp != "" {
		files = append(files, pending{tmp, path})
	}
	if err != nil {
		return err
	}
	for i, p := range files {
		if err := os.Rename(p.tmp, p.final); err != nil {
			return err
		}
		files[i].tmp = "" // renamed: nothing left to remove
	}
	syncDir(dir)
	return nil
}

// extent is where one tensor lies in the external data file.
type extent struct{ offset, length int64 }

// writeExternal writes the raw data of tensors to a temporary file beside
// dataPath, each at an aligned offset, and returns the file's name and the
// tensors' extents.
func writeExternal(dataPath string, tensors []*onnxpb.TensorProto) (string, []extent, error) {
	layout := make([]extent, 0, len(tensors))
	var zeros [ExternalPageAlignment]byte
	tmp, err := writeTemp(dataPath, func(w *bufio.Writer) error {
		var off int64
		for _, t := range tensors {
			align := int64(ExternalAlignment)
			if len(t.RawData) >= pageAlignMin {
				align = ExternalPageAlignment
			}
			pad := (align - off%align) % align
			if _, err := w.Write(zeros[:pad]); err != nil {
				return err
			}
			off += pad
			if _, err := w.Write(t.RawData); err != nil {
				return err
			}
			layout = append(layout, extent{off, int64(len(t.RawData))})
			off += int64(len(t.RawData))
		}
		return nil
	})
	return tmp, layout, err
}

// writeTemp creates a temporary file in final's directory, fills it with
// write through a buffer, syncs and closes it, and returns its name (also
// on failure after creation, for cleanup).
func writeTemp(final string, write func(*bufio.Writer) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// marshalDetached serializes mp with each tensor in moved pointing at its
// extent in the external file location instead of holding raw_data, then
// puts every tensor back as it was.
func marshalDetached(mp *onnxpb.ModelProto, moved []*onnxpb.TensorProto, layout []extent, location string) ([]byte, error) {
	type saved struct {
		raw []byte
		ext []*onnxpb.StringStringEntryProto
		loc *onnxpb.TensorProto_DataLocation
	}
	keep := make([]saved, 0, len(moved))
	defer func() {
		for i := len(keep) - 1; i >= 0; i-- {
			t := moved[i]
			t.RawData, t.ExternalData, t.DataLocation = keep[i].raw, keep[i].ext, keep[i].loc
		}
	}()
	for i, t := range moved {
		keep = append(keep, saved{t.RawData, t.ExternalData, t.DataLocation})
		t.RawData = nil
		t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		t.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: ptr("location"), Value: ptr(location)},
			{Key: ptr("offset"), Value: ptr(strconv.FormatInt(layout[i].offset, 10))},
			{Key: ptr("length"), Value: ptr(strconv.FormatInt(layout[i].length, 10))},
		}
	}
	return proto.Marshal(mp)
}

// walkInitializers calls fn for each initializer of g and of its subgraphs.
func walkInitializers(g *onnxpb.GraphProto, fn func(*onnxpb.TensorProto)) {
	for _, t := range g.GetInitializer() {
		if t != nil {
			fn(t)
		}
	}
	for _, n := range g.GetNode() {
		for _, sg := range subgraphs(n) {
			walkInitializers(sg, fn)
		}
	}
}

// storedBytes is the size of t's data as stored in the message.
func storedBytes(t *onnxpb.TensorProto) int64 {
	n := int64(len(t.RawData)) +
		4*int64(len(t.FloatData)) + 4*int64(len(t.Int32Data)) +
		8*int64(len(t.Int64Data)) + 8*int64(len(t.DoubleData)) + 8*int64(len(t.Uint64Data))
	for _, s := range t.StringData {
		n += int64(len(s))
	}
	return n
}

// syncDir flushes a directory's entries after renames; failures are ignored
// because some file systems do not support it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
