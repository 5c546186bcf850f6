package tui

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/quantscope/quantscope/profiler/study"
)

// hostOf is the host environment a row was measured on (study.Host.Key).
func hostOf(r study.Row) string {
	if r.Last == nil {
		return study.Host{}.Key()
	}
	return r.Last.Host.Key()
}

// rowID identifies a table row: the experiment (repeats folded) on its host.
func rowID(r study.Row) string { return hostOf(r) + "\x00" + groupKey(r.Experiment) }

// summarizeByHost folds records into rows host by host (study.Summarize
// on each host environment's records, hosts in first-seen order), so that
// results files from several machines opened together never fold into one
// another's rows or baselines.
func summarizeByHost(recs []study.Record) []study.Row {
	var order []string
	byHost := map[string][]study.Record{}
	for _, r := range recs {
		k := r.Host.Key()
		if _, ok := byHost[k]; !ok {
			order = append(order, k)
		}
		byHost[k] = append(byHost[k], r)
	}
	if len(order) == 1 {
		return study.Summarize(recs)
	}
	var rows []study.Row
	for _, k := range order {
		rows = append(rows, study.Summarize(byHost[k])...)
	}
	return rows
}

// hostOrder numbers the hosts of rows in first-seen order.
func hostOrder(rows []study.Row) map[string]int {
	idx := map[string]int{}
	for _, r := range rows {
		if _, ok := idx[hostOf(r)]; !ok {
			idx[hostOf(r)] = len(idx)
		}
	}
	return idx
}

// hostLabels names each host of rows: its host group or hostname, with the
// GPU, then the ONNX Runtime version, then a number added where two hosts
// would share a name.
func hostLabels(rows []study.Row) map[string]string {
	hosts := map[string]study.Host{}
	var keys []string
	for _, r := range rows {
		k := hostOf(r)
		if _, ok := hosts[k]; ok {
			continue
		}
		var h study.Host
		if r.Last != nil {
			h = r.Last.Host
		}
		hosts[k] = h
		keys = append(keys, k)
	}
	labels := map[string]string{}
	for level := 0; level < 3; level++ {
		count := map[string]int{}
		for _, k := range keys {
			h := hosts[k]
			l := cmp.Or(h.Name(), "this host")
			if level >= 1 && h.GPU != "" {
				l += " · " + h.GPU
			}
			if level >= 2 && h.ORTVersion != "" {
				l += " · ORT " + h.ORTVersion
			}
			labels[k] = l
			count[l]++
		}
		if slices.IndexFunc(keys, func(k string) bool { return count[labels[k]] > 1 }) < 0 {
			return labels
		}
	}
	for i, k := range keys {
		labels[k] = fmt.Sprintf("%s #%d", labels[k], i+1)
	}
	return labels
}

// hostnameList describes the machine a row's last record ran on: its
// hostname, and its GPU when it has one.
func hostnameList(r study.Row) string {
	if r.Last == nil {
		return ""
	}
	h := r.Last.Host
	s := cmp.Or(h.Hostname, "unknown hostname")
	if h.GPU != "" {
		s += " · " + h.GPU
	}
	return s
}
