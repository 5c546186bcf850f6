package imageset

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestScanFolder(t *testing.T) {
	f, err := Scan(folderDir, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"circle", "empty", "square", "stripes"}; !slices.Equal(f.Classes, want) {
		t.Errorf("classes %v, want sorted folders %v", f.Classes, want)
	}
	if len(f.Items) != 12 {
		t.Errorf("%d images, want 12 (the .txt and .gitkeep are not images)", len(f.Items))
	}
	notes := strings.Join(f.Notes, "\n")
	for _, want := range []string{"1 class folder has no images (empty)", "1 file that is not an image"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
	for _, it := range f.Items {
		cls := strings.Split(it.Rel, "/")[0]
		if f.Classes[it.Label] != cls {
			t.Errorf("%s labelled %d (%s)", it.Rel, it.Label, f.Classes[it.Label])
		}
	}
}

func TestScanLabels(t *testing.T) {
	f, err := Scan(folderDir, filepath.Join(folderDir, "labels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// labels.txt: stripes, "square a square", circle, empty.
	want := map[string]int32{"circle": 2, "square": 1, "stripes": 0}
	for _, it := range f.Items {
		if cls := strings.Split(it.Rel, "/")[0]; it.Label != want[cls] {
			t.Errorf("%s labelled %d, want %d (its line in labels.txt)", it.Rel, it.Label, want[cls])
		}
	}
	_, err = Scan(folderDir, filepath.Join(folderDir, "labels-missing.txt"))
	if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "2 of its 4 class folders have no line in the labels file") ||
		!strings.Contains(err.Error(), "empty, square") {
		t.Errorf("labels missing folders: %v", err)
	}
}

func TestScanBadLayouts(t *testing.T) {
	tmp := t.TempDir()
	mk := func(rel, content string) string {
		p := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := filepath.Join(tmp, "empty")
	os.MkdirAll(empty, 0o755)
	mk("flat/a.jpg", "x")
	mk("flat/b.png", "x")
	mk("noimages/cat/readme.md", "x")
	mk("noimages/dog/.hidden.jpg", "x")
	good := filepath.Join(tmp, "good")
	mk("good/cat/1.jpg", "x")
	mk("good/dog/1.jpg", "x")
	cases := []struct {
		dir, labels, want string
	}{
		{filepath.Join(tmp, "missing"), "", "no such file"},
		{mk("afile", "x"), "", "it is a file"},
		{empty, "", "it is empty"},
		{filepath.Join(tmp, "flat"), "", "holds 2 images but no class folders"},
		{filepath.Join(tmp, "noimages"), "", "its 2 class folders hold no images"},
		{good, mk("labels/blank.txt", "cat\n\ndog\n"), "line 2 is blank"},
		{good, mk("labels/dup.txt", "cat\ndog\ncat\n"), `"cat" is on lines 1 and 3`},
		{good, mk("labels/empty.txt", "\n\n"), "it is empty"},
		{good, filepath.Join(tmp, "labels/none.txt"), "no such file"},
	}
	for _, c := range cases {
		_, err := Scan(c.dir, c.labels)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Scan(%s, %s) = %v, want %q", filepath.Base(c.dir), filepath.Base(c.labels), err, c.want)
		}
	}
	// ImageNet-style lines: the first field names the folder; a labels
	// file may list more classes than the folder holds.
	lab := mk("labels/synsets.txt", "n00 tench, Tinca tinca\ncat house cat\ndog\nn03 other\n")
	f, err := Scan(good, lab)
	if err != nil {
		t.Fatal(err)
	}
	if f.Items[0].Label != 1 || f.Items[1].Label != 2 || !strings.Contains(strings.Join(f.Notes, " "), "2 of the 4 classes") {
		t.Errorf("synset labels: %+v, notes %v", f.Items, f.Notes)
	}
}
