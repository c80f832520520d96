package login

import (
	"runtime"
	"testing"
	"time"
)

// serve sizes the soft memory limit from PasswordChecks and
// PasswordCheckMemory, so both must say what the checks really do.

func TestPasswordChecksIsTheGatesBound(t *testing.T) {
	g := newGate(0, 0, 0)
	if cap(g.slots) != PasswordChecks() {
		t.Fatalf("the default gate lets %d checks run at once, PasswordChecks says %d", cap(g.slots), PasswordChecks())
	}
}

func TestPasswordCheckMemoryIsWhatACheckAllocates(t *testing.T) {
	hash, err := HashPassword("a password of some length")
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if ok, err := VerifyPassword(hash, "a password of some length"); err != nil || !ok {
		t.Fatalf("VerifyPassword = %v, %v", ok, err)
	}
	runtime.ReadMemStats(&after)
	// argon2id's blocks, and a little for parsing and the key.
	got := after.TotalAlloc - before.TotalAlloc
	if got < PasswordCheckMemory || got > PasswordCheckMemory+1<<20 {
		t.Fatalf("a check allocated %d bytes, PasswordCheckMemory says %d", got, PasswordCheckMemory)
	}
}

func TestReleaserFreesOnceChecksPause(t *testing.T) {
	const pause = 200 * time.Millisecond
	freed := make(chan struct{}, 4)
	r := &releaser{idle: pause, free: func() { freed <- struct{}{} }}
	notFreed := func(while string) {
		t.Helper()
		select {
		case <-freed:
			t.Fatalf("freed %s", while)
		case <-time.After(2 * pause):
		}
	}
	isFreed := func(after string) {
		t.Helper()
		select {
		case <-freed:
		case <-time.After(10 * time.Second):
			t.Fatalf("not freed %s", after)
		}
	}
	r.begin()
	r.begin()
	r.end()
	notFreed("while a check was running")
	r.end()
	isFreed("after the last check ended")
	// A check that starts within the pause puts the release off.
	r.begin()
	r.end()
	r.begin()
	notFreed("while a check that started within the pause was running")
	r.end()
	isFreed("after the second pause")
	notFreed("twice for one pause")
}
