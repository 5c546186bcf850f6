package imageset

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrLayout is matched (errors.Is) by every error about a folder that is
// not a labelled image folder, or labels that do not fit it.
var ErrLayout = errors.New("not a labelled image folder")

// Extensions are the image file name extensions a folder is read for
// (lower case; matched case-insensitively).
var Extensions = []string{".jpg", ".jpeg", ".png", ".webp", ".bmp"}

// Item is one image file of a folder and its class.
type Item struct {
	// Rel is the path relative to the folder, with forward slashes.
	Rel string
	// Label is the class index (the model's output index).
	Label int32
	// Size and ModNanos identify the file's version for the cache key.
	Size     int64
	ModNanos int64
}

// Folder is a scanned labelled image folder.
type Folder struct {
	// Dir is the folder as given.
	Dir string
	// Classes are the class names in output order: the labels file's
	// lines, or the sorted class folder names.
	Classes []string
	// LabelsFile is the labels file used, or "" for sorted folder names.
	LabelsFile string
	// Items are the image files, sorted by class folder then path.
	Items []Item
	// Notes are things the user should know that did not stop the scan:
	// class folders without images, files that are not images.
	Notes []string
}

// Scan reads an ImageFolder layout: every subfolder of dir is a class,
// every image file below it (any depth) an example of that class. Class
// indices come from labelsFile — one class name per line, in the model's
// output order; a line may carry a description after the name
// ("n01440764 tench, Tinca tinca") — or, when labelsFile is "", from the
// sorted folder names (torchvision's ImageFolder order).
//
// It fails, with an error matching ErrLayout that says what to do, when
// dir is missing, empty, holds images but no class folders, holds no
// image at all, or when a class folder has no line in the labels file.
// Class folders without images and files that are not images are noted.
func Scan(dir, labelsFile string) (*Folder, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("image folder %s: %w: it is a file; want a folder laid out as %s/<class>/*.jpg", dir, ErrLayout, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder %s: %w", dir, err)
	}
	var classDirs []string
	var looseImages int
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if isDir(dir, e) {
			classDirs = append(classDirs, name)
		} else if isImageName(name) {
			looseImages++
		}
	}
	switch {
	case len(classDirs) == 0 && looseImages > 0:
		return nil, fmt.Errorf("image folder %s: %w: it holds %d images but no class folders; lay it out as %s/<class>/<image> (one folder per class, as torchvision's ImageFolder reads)", dir, ErrLayout, looseImages, dir)
	case len(classDirs) == 0:
		return nil, fmt.Errorf("image folder %s: %w: it is empty; want one folder per class with the class's images in it (%s/<class>/*.jpg)", dir, ErrLayout, dir)
	}
	slices.Sort(classDirs)
	f := &Folder{Dir: dir, LabelsFile: labelsFile}
	index := map[string]int32{}
	if labelsFile == "" {
		f.Classes = classDirs
		for i, c := range classDirs {
			index[c] = int32(i)
		}
	} else {
		f.Classes, index, err = readLabels(labelsFile)
		if err != nil {
			return nil, err
		}
		var missing []string
		for _, c := range classDirs {
			if _, ok := index[c]; !ok {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("image folder %s: %w: %d of its %d class folders have no line in the labels file %s (%s); the labels file must name every class folder, in the model's output order (for ImageNet models, the 1,000 synsets such as n01440764)",
				dir, ErrLayout, len(missing), len(classDirs), labelsFile, listSome(missing, 5))
		}
		if n := len(f.Classes) - len(classDirs); n > 0 {
			f.Notes = append(f.Notes, fmt.Sprintf("%d of the %d classes in %s have no folder (evaluating on a subset of classes)", n, len(f.Classes), filepath.Base(labelsFile)))
		}
	}
	if looseImages > 0 {
		f.Notes = append(f.Notes, fmt.Sprintf("%d images directly in %s ignored: they belong in a class folder", looseImages, dir))
	}
	var empty []string
	var other int
	for _, c := range classDirs {
		n := 0
		root := filepath.Join(dir, c)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && path != root {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if !isImageName(d.Name()) {
				other++
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			f.Items = append(f.Items, Item{Rel: filepath.ToSlash(rel), Label: index[c], Size: info.Size(), ModNanos: info.ModTime().UnixNano()})
			n++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("image folder %s: %w", dir, err)
		}
		if n == 0 {
			empty = append(empty, c)
		}
	}
	if len(empty) > 0 {
		what := fmt.Sprintf("%d class folders have", len(empty))
		if len(empty) == 1 {
			what = "1 class folder has"
		}
		f.Notes = append(f.Notes, fmt.Sprintf("%s no images (%s): not evaluated", what, listSome(empty, 5)))
	}
	if other > 0 {
		what := fmt.Sprintf("%d files that are not images", other)
		if other == 1 {
			what = "1 file that is not an image"
		}
		f.Notes = append(f.Notes, fmt.Sprintf("%s (%s) ignored", what, strings.Join(Extensions, ", ")))
	}
	if len(f.Items) == 0 {
		return nil, fmt.Errorf("image folder %s: %w: its %d class folders hold no images (%s)", dir, ErrLayout, len(classDirs), strings.Join(Extensions, ", "))
	}
	return f, nil
}

// isDir follows symbolic links to folders.
func isDir(dir string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&fs.ModeSymlink != 0 {
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		return err == nil && st.IsDir()
	}
	return false
}

func isImageName(name string) bool {
	return slices.Contains(Extensions, strings.ToLower(filepath.Ext(name)))
}

// readLabels reads one class name per line. Trailing blank lines are
// ignored; a blank line before a class name, or a name given twice, is an
// error (it would shift every later index). The name is the whole line or,
// when the line has more after it, its first field, so "n01440764 tench"
// names the folder n01440764; both are looked up.
func readLabels(path string) ([]string, map[string]int32, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("labels file: %w", err)
	}
	defer fh.Close()
	var lines []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff")))
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("labels file %s: %w", path, err)
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil, nil, fmt.Errorf("labels file %s: %w: it is empty; want one class name per line, in the model's output order", path, ErrLayout)
	}
	index := map[string]int32{}
	for i, l := range lines {
		if l == "" {
			return nil, nil, fmt.Errorf("labels file %s: %w: line %d is blank; every line names one class, in the model's output order", path, ErrLayout, i+1)
		}
		if j, dup := index[l]; dup {
			return nil, nil, fmt.Errorf("labels file %s: %w: %q is on lines %d and %d; each class must appear once", path, ErrLayout, l, j+1, i+1)
		}
		index[l] = int32(i)
	}
	// First fields name folders too, where they are unambiguous.
	firsts := map[string][]int32{}
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 1 {
			firsts[f[0]] = append(firsts[f[0]], int32(i))
		}
	}
	for name, at := range firsts {
		if _, whole := index[name]; !whole && len(at) == 1 {
			index[name] = at[0]
		}
	}
	return lines, index, nil
}

// listSome names up to n items and how many more there are.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
