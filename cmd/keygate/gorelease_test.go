package main

import "testing"

func TestUnpatchedGo(t *testing.T) {
	for v, want := range map[string]bool{
		"go1.26.8":  true,
		"go1.25.12": true,
		"go1.26.10": false,
		"go1.26.11": false,
		"go1.27.0":  false,
		"devel go1.27-abcdef Mon Jan 1 00:00:00 2027 +0000": false,
	} {
		if got := unpatchedGo(v); got != want {
			t.Errorf("unpatchedGo(%q) = %v, want %v", v, got, want)
		}
	}
}
