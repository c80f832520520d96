package storage

import (
	"errors"
	"testing"
	"time"
)

func TestPrepareDevice(t *testing.T) {
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	last := first.Add(time.Hour)

	if _, err := PrepareDevice(Device{UserID: "u", LastSeen: last}); !errors.Is(err, ErrNoDeviceID) {
		t.Errorf("a device without an id: %v, want ErrNoDeviceID", err)
	}
	d, err := PrepareDevice(Device{ID: "d", UserID: "u", LastSeen: last})
	if err != nil || !d.FirstSeen.Equal(last) {
		t.Errorf("a zero FirstSeen: %v, %v; want LastSeen %v", d.FirstSeen, err, last)
	}
	d, err = PrepareDevice(Device{ID: "d", UserID: "u", FirstSeen: first, LastSeen: last})
	if err != nil || !d.FirstSeen.Equal(first) || !d.LastSeen.Equal(last) {
		t.Errorf("both times set: %v, %v, %v; want them kept", d.FirstSeen, d.LastSeen, err)
	}
}
