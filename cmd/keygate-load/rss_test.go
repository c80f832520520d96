package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks: 3 s. The command name holds a space
	// and a parenthesis, as a process may name itself.
	line := []byte("4242 (key gate) (x) S 1 4242 4242 0 -1 4194560 3000 0 0 0 250 50 0 0 20 0 12 0 1000 1000000 5000\n")
	got, err := parseStatCPU(line)
	if err != nil || got != 3*time.Second {
		t.Fatalf("parseStatCPU = %v, %v; want 3s", got, err)
	}
	for _, bad := range []string{"", "4242 key gate S 1", "4242 (k) S 1 2 3", "4242 (k) S 1 4242 4242 0 -1 4194560 3000 0 0 0 x 50 0"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) accepted", bad)
		}
	}
}

// The test process's own CPU time grows as it works.
func TestReadCPU(t *testing.T) {
	before, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	deadline := time.Now().Add(30 * time.Second)
	for after := before; after < before+50*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("CPU time still %v after 30 s of work, from %v", after, before)
		}
		for i := range 1_000_000 {
			x += i
		}
		if after, err = readCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	_ = x
}
