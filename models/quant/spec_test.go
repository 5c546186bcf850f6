package quant

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in        string
		want      Spec
		canonical string
	}{
		{"fp32", Spec{Kind: FP32}, "fp32"},
		{" FP16 ", Spec{Kind: FP16}, "fp16"},
		{"fp16:mixed", Spec{Kind: FP16, Mixed: true}, "fp16:mixed"},
		{"fp16:keep=Softmax+Erf,mixed", Spec{Kind: FP16, Mixed: true, KeepOps: []string{"Erf", "Softmax"}}, "fp16:mixed,keep=Erf+Softmax"},
		{"fp16:storage", Spec{Kind: FP16, Storage: true}, "fp16:storage"},
		{"fp16:EP=CPU,mixed", Spec{Kind: FP16, Mixed: true, EP: "cpu"}, "fp16:mixed,ep=cpu"},
		{"int8", Spec{Kind: Int8}, "int8"},
		{"int8:per-channel", Spec{Kind: Int8}, "int8"},
		{"int8:per-tensor,reduce-range", Spec{Kind: Int8, PerTensor: true, ReduceRange: true}, "int8:per-tensor,reduce-range"},
		{"int8:keep-last,keep-first", Spec{Kind: Int8, KeepFirst: true, KeepLast: true}, "int8:keep-first,keep-last"},
		{"int8-static", Spec{Kind: Int8Static}, "int8-static"},
		{"int8-static:calib=percentile", Spec{Kind: Int8Static}, "int8-static"},
		{"int8-static:calib=entropy", Spec{Kind: Int8Static, Calib: CalibEntropy}, "int8-static:calib=entropy"},
		{"int8-static:calib=MinMax,samples=8,act=u8", Spec{Kind: Int8Static, Calib: CalibMinMax, Samples: 8, Act: "u8"}, "int8-static:calib=minmax,samples=8,act=u8"},
		{"int8-static:act=s8", Spec{Kind: Int8Static, Act: "s8"}, "int8-static:act=s8"},
		{"int8-static:act=auto", Spec{Kind: Int8Static}, "int8-static"},
		{"int8:conv=integer,reduce-range", Spec{Kind: Int8, ConvInteger: true, ReduceRange: true}, "int8:reduce-range,conv=integer"},
		{"int8:conv=float", Spec{Kind: Int8}, "int8"},
		{"int8-static:percentile=99.9,samples=32", Spec{Kind: Int8Static, Percentile: 99.9}, "int8-static:percentile=99.9"},
		{"int4", Spec{Kind: Int4}, "int4"},
		{"int4:block=64,asym,accuracy_level=4", Spec{Kind: Int4, Block: 64, Asym: true}, "int4:block=64,asym"},
		{"int4:block=32,sym,accuracy-level=0", Spec{Kind: Int4, AccuracyLevel: -1}, "int4:accuracy_level=0"},
		{"int4:accuracy_level=1,block=128", Spec{Kind: Int4, Block: 128, AccuracyLevel: 1}, "int4:block=128,accuracy_level=1"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSpec(tc.in)
			if err != nil {
				t.Fatalf("ParseSpec: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseSpec = %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.canonical {
				t.Errorf("String() = %q, want %q", s, tc.canonical)
			}
			again, err := ParseSpec(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	for _, in := range []string{
		"", "fp64", "int8:", "int8:,", "int8:per-tensor,per-channel", "int8:per-tensor,per-tensor",
		"int4:sym,asym", "int4:block=48", "int4:block=", "int4:block", "int4:accuracy_level=5",
		"int4:accuracy_level=x", "fp16:per-tensor", "int8:mixed", "int8:calib=entropy",
		"int8-static:calib=kl", "int8-static:percentile=40", "int8-static:percentile=NaN",
		"int8-static:samples=0", "int8-static:act=u4", "fp16:keep=", "fp16:keep=1Bad", "fp16:mixed=1", "int8:conv=fast", "int4:conv=integer", "int8-static:conv=integer",
		"int4:asym=yes", "int8:reduce-range=1", "int4:unknown", "fp32:mixed",
		"fp16:storage=1", "fp16:ep=cuda", "fp16:ep=", "int8:storage", "int4:ep=cpu", "fp16:storage,mixed", "fp16:storage,ep=cpu",
	} {
		if sp, err := ParseSpec(in); err == nil {
			t.Errorf("ParseSpec(%q) = %+v, want an error", in, sp)
		} else if !errors.Is(err, ErrSpec) {
			t.Errorf("ParseSpec(%q) error %v does not match ErrSpec", in, err)
		}
	}
}

func TestSpecEffectiveDefaults(t *testing.T) {
	sp := MustParseSpec("int8-static")
	if sp.calibMethod() != CalibPercentile || sp.percentile() != DefaultPercentile || sp.samples() != DefaultCalibSamples {
		t.Errorf("int8-static defaults: %s %g %d", sp.calibMethod(), sp.percentile(), sp.samples())
	}
	i4 := MustParseSpec("int4")
	if i4.blockSize() != 32 || i4.accuracyLevel() != 4 {
		t.Errorf("int4 defaults: block %d accuracy_level %d", i4.blockSize(), i4.accuracyLevel())
	}
	if l := MustParseSpec("int4:accuracy_level=0").accuracyLevel(); l != 0 {
		t.Errorf("accuracy_level=0 gives %d", l)
	}
	if s := MustParseSpec("int4:block=64,asym").Slug(); s != "int4-block64-asym" {
		t.Errorf("Slug = %q", s)
	}
}

// FuzzParseSpec: ParseSpec never panics, and what it accepts prints as a
// canonical string that parses back to the same spec and prints the same.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"fp32", "fp16", "fp16:mixed", "int8", "int8:per-tensor,reduce-range", "int8-static:calib=percentile",
		"int4:block=64,asym,accuracy_level=4", "fp16:keep=Softmax+Erf", "int8-static:percentile=99.9,samples=7,act=u8",
		"int4:,", "int8:=", ":", "int4:block=1e3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpec(s)
		if err != nil {
			if !errors.Is(err, ErrSpec) {
				t.Fatalf("error %v does not match ErrSpec", err)
			}
			return
		}
		canon := sp.String()
		again, err := ParseSpec(canon)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", canon, s, err)
		}
		if !reflect.DeepEqual(again, sp) {
			t.Fatalf("%q → %+v → %q → %+v", s, sp, canon, again)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: %q → %q", canon, again.String())
		}
	})
}
