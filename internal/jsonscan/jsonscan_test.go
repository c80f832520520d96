package jsonscan

import (
	"encoding/json"
	"testing"
)

func TestQuotedIsTheStringWithItsQuotes(t *testing.T) {
	r := NewReader([]byte(` { "a" : "été" } `))
	var got []byte
	ok := r.Object(true, func(key string) (ok bool) {
		got, ok = r.Quoted()
		return ok && key == "a"
	})
	if !ok || !r.End() || string(got) != `"été"` {
		t.Fatalf("Quoted: %q, %v", got, ok)
	}
}

// Int accepts exactly the integers encoding/json writes for an int64.
func TestIntIsWhatJSONWritesForAnInteger(t *testing.T) {
	for _, in := range []string{"0", "-1", "42", "9223372036854775807", "-9223372036854775808"} {
		var want int64
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if got, ok := NewReader([]byte(in)).Int(); !ok || got != want {
			t.Errorf("%s: %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-", "01", "1.5", "1e3", "9223372036854775808", `"1"`} {
		r := NewReader([]byte(in))
		if _, ok := r.Int(); ok && r.End() {
			t.Errorf("%q read as an integer", in)
		}
	}
}

func TestAStructsKeyTwiceIsRefusedAMapsKeepsTheLast(t *testing.T) {
	doc := []byte(`{"k":"a","k":"b"}`)
	r := NewReader(doc)
	if r.Object(true, func(string) bool { _, ok := r.Str(); return ok }) {
		t.Error("a struct's object with a key twice was read")
	}
	r = NewReader(doc)
	last := ""
	if !r.Object(false, func(string) (ok bool) { last, ok = r.Str(); return ok }) || last != "b" {
		t.Errorf("a map's object: last value %q", last)
	}
}

// A reader of a string reads as one of the same bytes does, and the bytes
// it returns are copies: changing them cannot change the string.
func TestAStringReaderReadsAsABytesReader(t *testing.T) {
	const text = ` {"q":"été","o":{"a":["}"]},"l":["x","y"]} `
	doc := string([]byte(text)) // on the heap, where a shared byte could change it
	read := func(r *Reader) (q, o []byte, l []string, ok bool) {
		ok = r.Object(true, func(key string) (ok bool) {
			switch key {
			case "q":
				q, ok = r.Quoted()
			case "o":
				o, ok = r.RawObject()
			case "l":
				l, ok = r.Strs()
			}
			return ok
		})
		return q, o, l, ok && r.End()
	}
	q1, o1, l1, ok1 := read(NewReader([]byte(doc)))
	q2, o2, l2, ok2 := read(NewStringReader(doc))
	if !ok1 || !ok2 || string(q1) != string(q2) || string(o1) != string(o2) || len(l2) != 2 || l1[1] != l2[1] {
		t.Fatalf("bytes: %q %q %q %v; string: %q %q %q %v", q1, o1, l1, ok1, q2, o2, l2, ok2)
	}
	q2[1], o2[1] = 'X', 'X'
	if doc != text {
		t.Fatal("changing what a string reader returned changed its string")
	}
}
