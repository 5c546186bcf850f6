package tui

import (
	"sync"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/profiler/study"
)

// feedEvent is one study.Update tagged with the run segment it came from.
type feedEvent struct {
	seg int
	u   study.Update
}

// maxFeedSamples bounds the live samples held between two drains; older
// samples are dropped first (stage changes and records never are).
const maxFeedSamples = 256

// feed carries study updates from the runner goroutine to the UI. The
// runner only appends under a mutex (it never waits on the UI); the UI's
// tick drains everything at once, so a burst of samples costs one redraw.
type feed struct {
	mu      sync.Mutex
	events  []feedEvent
	samples int
	decode  imageset.Progress // latest image decoding progress (--eval-dir)
	notify  chan struct{}     // signaled (without blocking) on every push
}

// decoding records the progress of decoding a labelled image folder (from
// the runner goroutine, through evaluate.Dataset.Progress).
func (f *feed) decoding(p imageset.Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decode = p
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// decodeProgress returns the latest decoding progress.
func (f *feed) decodeProgress() imageset.Progress {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.decode
}

func newFeed() *feed { return &feed{notify: make(chan struct{}, 1)} }

// push is study.RunConfig.OnUpdate for segment seg.
func (f *feed) push(seg int, u study.Update) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.Sample != nil {
		if f.samples >= maxFeedSamples {
			f.dropOldestSample()
		}
		f.samples++
	}
	f.events = append(f.events, feedEvent{seg: seg, u: u})
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *feed) dropOldestSample() {
	for i, e := range f.events {
		if e.u.Sample != nil && e.u.Record == nil {
			f.events = append(f.events[:i], f.events[i+1:]...)
			f.samples--
			return
		}
	}
}

// drain returns and forgets every pending event, in arrival order.
func (f *feed) drain() []feedEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.events
	f.events, f.samples = nil, 0
	return out
}
