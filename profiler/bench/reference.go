package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// referenceMagic starts a reference-outputs file.
var referenceMagic = [8]byte{'Q', 'S', 'R', 'E', 'F', '0', '0', '1'}

// maxReferenceValues bounds what ReadReference will allocate (1 Gi floats).
const maxReferenceValues = 1 << 30

// WriteReference stores one output vector per sample (all the same length)
// as the FP32 reference a variant's fidelity is measured against. The file
// is written to a temporary name and renamed, so a reader never sees half.
func WriteReference(path string, outputs [][]float32) error {
	if len(outputs) == 0 {
		return fmt.Errorf("write reference %s: no samples", path)
	}
	dim := len(outputs[0])
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ref-*")
	if err != nil {
		return fmt.Errorf("write reference %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	hdr := []uint32{uint32(len(outputs)), uint32(dim)}
	err = binary.Write(w, binary.LittleEndian, referenceMagic)
	if err == nil {
		err = binary.Write(w, binary.LittleEndian, hdr)
	}
	for i, o := range outputs {
		if err != nil {
			break
		}
		if len(o) != dim {
			err = fmt.Errorf("sample %d has %d values, sample 0 has %d", i, len(o), dim)
			break
		}
		err = binary.Write(w, binary.LittleEndian, o)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write reference %s: %w", path, err)
	}
	return nil
}

// ReadReference loads a file written by WriteReference.
func ReadReference(path string) ([][]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read reference %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read reference %s: %w", path, err)
	}
	r := bufio.NewReader(f)
	var magic [8]byte
	var hdr [2]uint32
	if err := binary.Read(r, binary.LittleEndian, &magic); err != nil || magic != referenceMagic {
		return nil, fmt.Errorf("read reference %s: not a quantscope reference file", path)
	}
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("read reference %s: truncated header", path)
	}
	n, dim := int64(hdr[0]), int64(hdr[1])
	if n*dim > maxReferenceValues || 16+4*n*dim != st.Size() {
		return nil, fmt.Errorf("read reference %s: header says %d×%d values but the file is %d bytes", path, n, dim, st.Size())
	}
	out := make([][]float32, n)
	buf := make([]byte, 4*dim)
	for i := range out {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read reference %s: sample %d: %w", path, i, errors.Join(err, io.ErrUnexpectedEOF))
		}
		v := make([]float32, dim)
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
		}
		out[i] = v
	}
	return out, nil
}
