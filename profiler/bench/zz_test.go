package bench_test

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/profiler/runtime"
)

func TestZZProf(t *testing.T) {
	runtime.Init("")
	res := map[string]string{}
	for _, f := range strings.Fields(os.Getenv("FS")) {
		data, err := runtime.Profile(f, runtime.SessionConfig{IntraOpThreads: 2}, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		var ev []struct {
			Cat, Name string
			Args      struct {
				OpName string           `json:"op_name"`
				In     []map[string]any `json:"input_type_shape"`
			}
		}
		json.Unmarshal(data, &ev)
		for _, e := range ev {
			if e.Cat != "Node" || e.Args.OpName == "Cast" {
				continue
			}
			ts := []string{}
			for _, m := range e.Args.In {
				for k := range m {
					ts = append(ts, k)
				}
			}
			k := e.Args.OpName
			v := strings.Join(ts, ",")
			if strings.Contains(v, "float16") {
				res[k] = "FP16 " + v
			} else if strings.Contains(v, "float") && !strings.HasPrefix(res[k], "FP16") {
				res[k] = "fp32 " + v + " " + e.Name
			}
		}
	}
	keys := []string{}
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Println(k, res[k])
	}
}
