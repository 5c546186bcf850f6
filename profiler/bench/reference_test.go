package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReferenceRoundTripAndDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ref.bin")
	want := [][]float32{{1, -2, 3.5}, {0, 1e-8, -1e30}}
	if err := WriteReference(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReference(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	b, _ := os.ReadFile(path)
	cases := map[string][]byte{
		"truncated": b[:len(b)-3],
		"not ours":  []byte("hello world, not a reference file"),
		"empty":     nil,
	}
	for name, data := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if _, err := ReadReference(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want one naming the file", name, err)
		}
	}
	if err := WriteReference(filepath.Join(dir, "ragged"), [][]float32{{1}, {1, 2}}); err == nil {
		t.Error("ragged outputs accepted")
	}
}
