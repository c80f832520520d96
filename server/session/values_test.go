package session

import (
	"bytes"
	"encoding/gob"
	"reflect"
	"strings"
	"testing"
)

// signedIn is what a signed-in browser's session holds.
func signedIn() map[any]any {
	return map[any]any{keyUserID: "u_AbCdEfGhIjKlMnOpQrStUv", keyACR: "phr", keyAMR: []string{"hwk", "user"},
		keyAuthTime: int64(1796000000), keyDevice: "d_0123456789abcdef0123456789abcdef",
		keyCSRF: "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg", keySID: "c2lkc2lkc2lkc2lkc2lkc2lkc2lkc2lkc2lkc2lkc2k",
		keyCreated: int64(1796000000)}
}

func TestSessionValues(t *testing.T) {
	t.Run("what is written reads back the same", func(t *testing.T) {
		for name, values := range map[string]map[any]any{
			"signed in":        signedIn(),
			"enrolling":        {keyEnroll: "u_x", keyEnrollLn: "00ff", keyCSRF: "c"},
			"empty":            {},
			"no AMR":           {keyUserID: "u_x", keyAMR: []string(nil)},
			"an empty AMR":     {keyUserID: "u_x", keyAMR: []string{}},
			"escapes, unicode": {keyUserID: `a "quoted" \\ id`, keyACR: "été\n<&>", keyAuthTime: int64(-1)},
		} {
			data, err := encodeValues(values)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := decodeValues(data)
			if err != nil || !reflect.DeepEqual(got, values) {
				t.Fatalf("%s: wrote %v as %s, read back %v (%v)", name, values, data, got, err)
			}
		}
	})

	t.Run("a key or type a session does not hold is refused, not dropped", func(t *testing.T) {
		for name, values := range map[string]map[any]any{
			"an unknown key":         {"colour": "blue"},
			"a key not a string":     {1: "x"},
			"an int as a string":     {keyUserID: 1},
			"a string as an int":     {keyAuthTime: "1796000000"},
			"a plain int":            {keyCreated: 1},
			"a list of another type": {keyAMR: []any{"hwk"}},
		} {
			if data, err := encodeValues(values); err == nil {
				t.Errorf("%s: written as %s", name, data)
			}
		}
	})

	t.Run("a row written in gob, before the values were JSON, still reads", func(t *testing.T) {
		var old bytes.Buffer
		if err := gob.NewEncoder(&old).Encode(signedIn()); err != nil {
			t.Fatal(err)
		}
		got, err := decodeValues(old.Bytes())
		if err != nil || !reflect.DeepEqual(got, signedIn()) {
			t.Fatalf("read %v (%v)", got, err)
		}
	})

	t.Run("anything else is unreadable", func(t *testing.T) {
		for _, data := range []string{"", "not gob", `{"uid":1}`, `{"colour":"blue"}`, `{"uid":"a"} x`, `[]`} {
			if got, err := decodeValues([]byte(data)); err == nil {
				t.Errorf("%q read as %v", data, got)
			}
		}
	})
}

// valuesReadLikeEncodingJSON checks that what the direct reader reads, it
// reads as encoding/json does.
func valuesReadLikeEncodingJSON(t *testing.T, data []byte) {
	fast, ok := readValues(data)
	if !ok {
		return
	}
	slow, err := unmarshalValues(data)
	if err != nil || !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: read directly as %v, by encoding/json as %v (%v)", data, fast, slow, err)
	}
}

func FuzzSessionValues(f *testing.F) {
	data, _ := encodeValues(signedIn())
	f.Add(data)
	f.Add([]byte(`{"uid":"a","uid":"b"}`))
	f.Add([]byte(`{"amr":[],"auth_time":-0,"csrf":"\u0041"}`))
	f.Add([]byte(`{"acr":"` + strings.Repeat("é", 3) + `","created":01}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		valuesReadLikeEncodingJSON(t, data)
		_, _ = decodeValues(data) // never panics, whatever a row holds
	})
}

// Loading a signed-in session's values, which every page of a sign-in
// does:
//
//	go test ./server/session -run '^$' -bench SessionValues
func BenchmarkSessionValues(b *testing.B) {
	data, err := encodeValues(signedIn())
	if err != nil {
		b.Fatal(err)
	}
	var old bytes.Buffer
	if err := gob.NewEncoder(&old).Encode(signedIn()); err != nil {
		b.Fatal(err)
	}
	for name, data := range map[string][]byte{"json": data, "gob (rows from before)": old.Bytes()} {
		b.Run("read/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeValues(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeValues(signedIn()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
