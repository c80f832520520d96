package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// readRSS is the resident set size of process pid on this machine, from
// /proc/PID/status (VmRSS).
func readRSS(pid int) (int64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(raw) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, ok := bytes.CutSuffix(bytes.TrimSpace(rest), []byte(" kB"))
			if n, err := strconv.ParseInt(string(bytes.TrimSpace(kb)), 10, 64); ok && err == nil {
				return n << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS line", pid)
}

// rssWatch samples a process's RSS until stopped and keeps the peak.
type rssWatch struct {
	pid  int
	stop chan struct{}
	wg   sync.WaitGroup
	peak int64
}

// rssSampleEvery is often enough to see a sign-in storm's peak and cheap
// next to the load (one small file read).
const rssSampleEvery = 50 * time.Millisecond

func watchRSS(pid int) *rssWatch {
	w := &rssWatch{pid: pid, stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			if n, err := readRSS(pid); err == nil {
				w.peak = max(w.peak, n)
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// finish stops sampling and returns the peak seen.
func (w *rssWatch) finish() int64 {
	close(w.stop)
	w.wg.Wait()
	if n, err := readRSS(w.pid); err == nil {
		w.peak = max(w.peak, n)
	}
	return w.peak
}
