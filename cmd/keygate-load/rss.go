package main

import (
	"bytes"
	"errors"
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

// clockTicksPerSecond is the unit of /proc/PID/stat's CPU times (USER_HZ,
// 100 on every Linux architecture keygate is built for).
const clockTicksPerSecond = 100

// readCPU is the CPU time process pid has used so far, user and system,
// from /proc/PID/stat.
func readCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	d, err := parseStatCPU(raw)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return d, nil
}

// parseStatCPU adds utime and stime, fields 14 and 15 of a /proc/PID/stat
// line. The command name, field 2, is in parentheses and may hold spaces
// and parentheses itself, so fields are counted after its last ')'.
func parseStatCPU(raw []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := bytes.Fields(raw[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("CPU time %q", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicksPerSecond, nil
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
