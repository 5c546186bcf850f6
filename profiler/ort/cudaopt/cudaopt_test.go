package cudaopt

import (
	"maps"
	"strings"
	"testing"
)

func TestCUDAOptionsMap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		want  map[string]string
		flags string
	}{
		{"none", Options{}, nil, ""},
		{"tf32 on", Options{TF32: "on"}, map[string]string{"use_tf32": "1"}, "--tf32"},
		{"tf32 off, any case", Options{TF32: "OFF"}, map[string]string{"use_tf32": "0"}, "--tf32"},
		{"cuda graph", Options{CUDAGraph: true}, map[string]string{"enable_cuda_graph": "1"}, "--cuda-graph"},
		{"conv exhaustive", Options{ConvAlgo: "exhaustive"}, map[string]string{"cudnn_conv_algo_search": "EXHAUSTIVE"}, "--conv-algo"},
		{"conv heuristic", Options{ConvAlgo: "heuristic"}, map[string]string{"cudnn_conv_algo_search": "HEURISTIC"}, "--conv-algo"},
		{"conv default", Options{ConvAlgo: "Default"}, map[string]string{"cudnn_conv_algo_search": "DEFAULT"}, "--conv-algo"},
		{"nhwc", Options{NHWC: true}, map[string]string{"prefer_nhwc": "1"}, "--nhwc"},
		{"all", Options{TF32: "off", CUDAGraph: true, ConvAlgo: "heuristic", NHWC: true},
			map[string]string{"use_tf32": "0", "enable_cuda_graph": "1", "cudnn_conv_algo_search": "HEURISTIC", "prefer_nhwc": "1"},
			"--tf32 --cuda-graph --conv-algo --nhwc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opts.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := tc.opts.Map(); !maps.Equal(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Errorf("Map() = %v, want %v", got, tc.want)
			}
			if got := strings.Join(tc.opts.Flags(), " "); got != tc.flags {
				t.Errorf("Flags() = %q, want %q", got, tc.flags)
			}
			if tc.opts.IsZero() != (tc.want == nil) {
				t.Errorf("IsZero() = %v", tc.opts.IsZero())
			}
		})
	}
}

func TestCUDAOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string // substring of the error
	}{
		{Options{TF32: "yes"}, `--tf32 "yes": want on or off`},
		{Options{TF32: "1"}, "--tf32"},
		{Options{ConvAlgo: "fast"}, `--conv-algo "fast": want exhaustive, heuristic or default`},
		{Options{ConvAlgo: "EXHAUSTIVE"}, ""},
	} {
		err := tc.opts.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.opts, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one containing %q", tc.opts, err, tc.want)
		}
	}
}

func TestCUDAOptionsResolve(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		eps     []string
		pass    map[string]string
		want    map[string]string
		wantErr string
	}{
		{name: "nothing set, cpu", eps: []string{"cpu"}},
		{name: "nothing set, pass-through kept out", eps: []string{"cuda"}, pass: map[string]string{"use_tf32": "0"}},
		{name: "cuda", opts: Options{TF32: "off"}, eps: []string{"cuda"}, want: map[string]string{"use_tf32": "0"}},
		{name: "auto", opts: Options{CUDAGraph: true}, eps: []string{"auto"}, want: map[string]string{"enable_cuda_graph": "1"}},
		{name: "cpu and cuda: applied to cuda runs", opts: Options{NHWC: true}, eps: []string{"cpu", "cuda"},
			want: map[string]string{"prefer_nhwc": "1"}},
		{name: "cuda graph on cpu", opts: Options{CUDAGraph: true}, eps: []string{"cpu"},
			wantErr: "--cuda-graph needs --ep cuda"},
		{name: "two flags on cpu", opts: Options{TF32: "off", NHWC: true}, eps: []string{"cpu"},
			wantErr: "--tf32, --nhwc need --ep cuda"},
		{name: "tensorrt", opts: Options{ConvAlgo: "heuristic"}, eps: []string{"tensorrt"},
			wantErr: "--conv-algo needs --ep cuda (or auto), not --ep tensorrt"},
		{name: "bad value before EP check", opts: Options{TF32: "maybe"}, eps: []string{"cpu"}, wantErr: "--tf32"},
		{name: "conflict", opts: Options{TF32: "off"}, eps: []string{"cuda"}, pass: map[string]string{"use_tf32": "1"},
			wantErr: "--tf32 sets use_tf32=0, but --ep-option use_tf32=1 says otherwise"},
		{name: "conflict on conv algo", opts: Options{ConvAlgo: "heuristic"}, eps: []string{"cuda"},
			pass: map[string]string{"cudnn_conv_algo_search": "DEFAULT"}, wantErr: "--conv-algo sets cudnn_conv_algo_search=HEURISTIC"},
		{name: "same value is no conflict", opts: Options{TF32: "off"}, eps: []string{"cuda"},
			pass: map[string]string{"use_tf32": "false", "device_id": "1"}, want: map[string]string{"use_tf32": "0"}},
		{name: "same conv algo spelled as ORT's number", opts: Options{ConvAlgo: "heuristic"}, eps: []string{"cuda"},
			pass: map[string]string{"cudnn_conv_algo_search": "1"}, want: map[string]string{"cudnn_conv_algo_search": "HEURISTIC"}},
		{name: "malformed pass-through value", eps: []string{"cuda"}, pass: map[string]string{"enable_cuda_graph": "yes"},
			wantErr: "--ep-option enable_cuda_graph=yes: want 1 or 0"},
		{name: "other pass-through keys are not checked", eps: []string{"cuda"}, pass: map[string]string{"device_id": "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opts.Resolve(tc.eps, tc.pass)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNormalizeCUDAOption(t *testing.T) {
	for _, tc := range []struct {
		key, in, want string
		bad           bool
	}{
		{"use_tf32", "1", "1", false},
		{"use_tf32", "True", "1", false},
		{"use_tf32", "false", "0", false},
		{"use_tf32", "on", "", true},
		{"prefer_nhwc", " 0 ", "0", false},
		{"enable_cuda_graph", "2", "", true},
		{"cudnn_conv_algo_search", "heuristic", "HEURISTIC", false},
		{"cudnn_conv_algo_search", "2", "DEFAULT", false},
		{"cudnn_conv_algo_search", "3", "", true},
		{"device_id", "anything", "anything", false},
	} {
		got, err := Normalize(tc.key, tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("Normalize(%s, %q) = %q, %v; want %q (error %v)", tc.key, tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestEffectiveCUDAOptions(t *testing.T) {
	def := Effective(nil)
	want := map[string]string{"use_tf32": "1", "cudnn_conv_algo_search": "EXHAUSTIVE", "prefer_nhwc": "0", "enable_cuda_graph": "0"}
	if !maps.Equal(def, want) || !maps.Equal(Defaults(), want) {
		t.Errorf("defaults = %v, want ORT 1.29's %v", def, want)
	}
	Defaults()["use_tf32"] = "0" // a copy: must not change the defaults
	got := Effective(map[string]string{"use_tf32": "false", "device_id": "1", "enable_cuda_graph": "TRUE"})
	want = map[string]string{"use_tf32": "0", "cudnn_conv_algo_search": "EXHAUSTIVE", "prefer_nhwc": "0", "enable_cuda_graph": "1", "device_id": "1"}
	if !maps.Equal(got, want) {
		t.Errorf("effective = %v, want %v", got, want)
	}
}

func TestCUDAGraphRequested(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"enable_cuda_graph": "0"}, false},
		{map[string]string{"enable_cuda_graph": "1"}, true},
		{map[string]string{"enable_cuda_graph": "true"}, true},
		{map[string]string{"enable_cuda_graph": "yes"}, false},
	} {
		if got := GraphRequested(tc.opts); got != tc.want {
			t.Errorf("GraphRequested(%v) = %v", tc.opts, got)
		}
	}
	in := map[string]string{"enable_cuda_graph": "1", "use_tf32": "0"}
	out := WithoutGraph(in)
	if GraphRequested(out) || out["use_tf32"] != "0" || in["enable_cuda_graph"] != "1" {
		t.Errorf("WithoutGraph: %v (input now %v)", out, in)
	}
	if WithoutGraph(nil)["enable_cuda_graph"] != "0" {
		t.Error("WithoutGraph(nil)")
	}
}
