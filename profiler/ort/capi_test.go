package ort

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ortAPIEntries lists every OrtApi entry quantscope reaches by index, by the
// name onnxruntime_c_api.h gives it.
var ortAPIEntries = map[string]int{
	"GetErrorMessage":                          idxGetErrorMessage,
	"CreateEnv":                                idxCreateEnv,
	"CreateSession":                            idxCreateSession,
	"Run":                                      idxRun,
	"SessionGetInputCount":                     idxSessionGetInputCount,
	"SessionGetOutputCount":                    idxSessionGetOutputCount,
	"SessionGetInputTypeInfo":                  idxSessionGetInputTypeInfo,
	"SessionGetOutputTypeInfo":                 idxSessionGetOutputTypeInfo,
	"SessionGetInputName":                      idxSessionGetInputName,
	"SessionGetOutputName":                     idxSessionGetOutputName,
	"CreateTensorAsOrtValue":                   idxCreateTensorAsOrtValue,
	"CreateTensorWithDataAsOrtValue":           idxCreateTensorWithData,
	"GetTensorMutableData":                     idxGetTensorMutableData,
	"CastTypeInfoToTensorInfo":                 idxCastTypeInfoToTensorInfo,
	"GetOnnxTypeFromTypeInfo":                  idxGetOnnxTypeFromTypeInfo,
	"GetTensorElementType":                     idxGetTensorElementType,
	"GetDimensionsCount":                       idxGetDimensionsCount,
	"GetDimensions":                            idxGetDimensions,
	"GetTensorTypeAndShape":                    idxGetTensorTypeAndShape,
	"CreateMemoryInfo":                         idxCreateMemoryInfo,
	"CreateCpuMemoryInfo":                      idxCreateCpuMemoryInfo,
	"MemoryInfoGetName":                        idxMemoryInfoGetName,
	"AllocatorFree":                            idxAllocatorFree,
	"GetAllocatorWithDefaultOptions":           idxGetAllocatorWithDefaultOpts,
	"ReleaseStatus":                            idxReleaseStatus,
	"ReleaseMemoryInfo":                        idxReleaseMemoryInfo,
	"ReleaseSession":                           idxReleaseSession,
	"ReleaseValue":                             idxReleaseValue,
	"ReleaseTypeInfo":                          idxReleaseTypeInfo,
	"ReleaseTensorTypeAndShapeInfo":            idxReleaseTensorTypeAndShape,
	"SessionEndProfiling":                      idxSessionEndProfiling,
	"GetAvailableProviders":                    idxGetAvailableProviders,
	"ReleaseAvailableProviders":                idxReleaseAvailableProviders,
	"CreateAllocator":                          idxCreateAllocator,
	"ReleaseAllocator":                         idxReleaseAllocator,
	"RunWithBinding":                           idxRunWithBinding,
	"CreateIoBinding":                          idxCreateIoBinding,
	"ReleaseIoBinding":                         idxReleaseIoBinding,
	"BindInput":                                idxBindInput,
	"BindOutput":                               idxBindOutput,
	"GetBuildInfoString":                       idxGetBuildInfoString,
	"GetKeyValuePairs":                         idxGetKeyValuePairs,
	"GetEpDevices":                             idxGetEpDevices,
	"SessionOptionsAppendExecutionProvider_V2": idxAppendEPV2,
	"HardwareDevice_Type":                      idxHardwareDeviceType,
	"HardwareDevice_VendorId":                  idxHardwareDeviceVendID,
	"HardwareDevice_Vendor":                    idxHardwareDeviceVendor,
	"HardwareDevice_DeviceId":                  idxHardwareDeviceID,
	"EpDevice_EpName":                          idxEpDeviceEpName,
	"EpDevice_EpVendor":                        idxEpDeviceEpVendor,
	"EpDevice_EpOptions":                       idxEpDeviceEpOptions,
	"EpDevice_Device":                          idxEpDeviceDevice,
	"EpDevice_MemoryInfo":                      idxEpDeviceMemoryInfo,
	"CopyTensors":                              idxCopyTensors,
}

// TestOrtApiIndices counts the entries of struct OrtApi in the
// onnxruntime_c_api.h that onnxruntime_go ships (API version 24, the one
// quantscope asks for) and checks every index quantscope calls through. A
// wrong index calls another function with the wrong arguments; this catches
// it without a GPU for entries the CPU build never exercises.
func TestOrtApiIndices(t *testing.T) {
	header := onnxruntimeGoHeader(t)
	entries, version := parseOrtAPI(t, header)
	if version != apiVersion {
		t.Fatalf("%s is API version %d; quantscope asks for %d: recount the indices", header, version, apiVersion)
	}
	for name, idx := range ortAPIEntries {
		if idx >= len(entries) || entries[idx] != name {
			got := "past the end"
			if idx < len(entries) {
				got = entries[idx]
			}
			want := -1
			for i, e := range entries {
				if e == name {
					want = i
				}
			}
			t.Errorf("OrtApi[%d] is %s, not %s (which is at %d)", idx, got, name, want)
		}
	}
}

// onnxruntimeGoHeader finds onnxruntime_c_api.h in the onnxruntime_go
// module this package builds against.
func onnxruntimeGoHeader(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	if err != nil {
		t.Fatalf("locate the onnxruntime_go module: %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "onnxruntime_c_api.h")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("onnxruntime_go's C API header: %v", err)
	}
	return p
}

// parseOrtAPI lists the entry names of struct OrtApi in order, and the
// header's ORT_API_VERSION.
func parseOrtAPI(t *testing.T, path string) ([]string, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	version := 0
	if m := regexp.MustCompile(`#define ORT_API_VERSION (\d+)`).FindStringSubmatch(src); m != nil {
		for _, c := range m[1] {
			version = version*10 + int(c-'0')
		}
	}
	start := strings.Index(src, "struct OrtApi {")
	if start < 0 {
		t.Fatal("no struct OrtApi in the header")
	}
	body := src[start+len("struct OrtApi {"):]
	depth := 1
	for i, c := range body {
		if c == '{' {
			depth++
		} else if c == '}' {
			if depth--; depth == 0 {
				body = body[:i]
				break
			}
		}
	}
	body = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(body, "")
	body = regexp.MustCompile(`//[^\n]*`).ReplaceAllString(body, "")
	var entries []string
	forms := []*regexp.Regexp{
		regexp.MustCompile(`^ORT_API2_STATUS\(\s*(\w+)`),
		regexp.MustCompile(`^ORT_API_T\(\s*[^,]+,\s*(\w+)`),
		regexp.MustCompile(`^ORT_CLASS_RELEASE2?\(\s*(\w+)`),
		regexp.MustCompile(`\(\s*ORT_API_CALL\s*\*\s*(\w+)\s*\)`),
	}
	paren := 0
	var cur strings.Builder
	for _, c := range body {
		switch c {
		case '(':
			paren++
		case ')':
			paren--
		}
		if c == ';' && paren == 0 {
			e := strings.TrimSpace(cur.String())
			cur.Reset()
			if e == "" {
				continue
			}
			name := ""
			for i, re := range forms {
				if m := re.FindStringSubmatch(e); m != nil {
					name = m[1]
					if i == 2 {
						name = "Release" + name
					}
					break
				}
			}
			if name == "" {
				t.Fatalf("unrecognised OrtApi entry %q", e)
			}
			entries = append(entries, name)
			continue
		}
		cur.WriteRune(c)
	}
	if len(entries) < 400 {
		t.Fatalf("parsed %d OrtApi entries: the header's layout changed", len(entries))
	}
	return entries, version
}

// sessionMakers are the onnxruntime_go functions that create an ONNX
// Runtime session (some only briefly, to read a model's inputs).
var sessionMakers = map[string]bool{
	"NewAdvancedSession": true, "NewAdvancedSessionWithONNXData": true,
	"NewDynamicAdvancedSession": true, "NewDynamicAdvancedSessionWithONNXData": true,
	"GetInputOutputInfo": true, "GetInputOutputInfoWithOptions": true, "GetInputOutputInfoWithONNXData": true,
	"GetModelMetadata": true, "GetModelMetadataWithOptions": true, "GetModelMetadataWithONNXData": true,
}

// TestOneCreateSessionCallSite keeps SessionsCreated honest: no Go file of
// the module creates a session through onnxruntime_go, so every session is
// one of openCSession's, counted there. (On CUDA each extra session uploads
// the weights again and lengthens the measured cold start.)
func TestOneCreateSessionCallSite(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && sessionMakers[sel.Sel.Name] {
				for _, imp := range f.Imports {
					if strings.Trim(imp.Path.Value, `"`) == "github.com/yalue/onnxruntime_go" &&
						(imp.Name == nil && id.Name == "onnxruntime" || imp.Name != nil && imp.Name.Name == id.Name) {
						t.Errorf("%s: %s.%s creates an ONNX Runtime session outside openCSession", fset.Position(sel.Pos()), id.Name, sel.Sel.Name)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
