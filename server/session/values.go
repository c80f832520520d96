package session

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keygate/keygate/internal/jsonscan"
)

// A session's values are stored in its row as a JSON object of its keys
// (keyUserID and the rest). Every page of a sign-in loads the session, and
// gob, which stored them before, compiled a decoder for each load: about
// 250 allocations and 19 µs, where reading the JSON directly takes 20 and
// little more than 1 µs.

func init() {
	// Rows written before the values were JSON hold them in gob, inside
	// an interface map (see decodeValues).
	gob.Register([]string{})
}

// valueKind is the type a key's value has: every value a session holds is
// one of these.
type valueKind int

const (
	kindString valueKind = iota
	kindStrings
	kindInt
)

var valueKinds = map[string]valueKind{
	keyUserID: kindString, keyACR: kindString, keyAMR: kindStrings, keyAuthTime: kindInt,
	keyCSRF: kindString, keySID: kindString, keyCreated: kindInt,
	keyEnroll: kindString, keyEnrollLn: kindString, keyDevice: kindString,
}

// encodeValues writes a session's values for its row. A key or a type the
// session does not hold is a programming error, reported rather than lost.
func encodeValues(values map[any]any) ([]byte, error) {
	m := make(map[string]any, len(values))
	for k, v := range values {
		key, _ := k.(string)
		kind, known := valueKinds[key]
		ok := false
		switch v.(type) {
		case string:
			ok = kind == kindString
		case []string:
			ok = kind == kindStrings
		case int64:
			ok = kind == kindInt
		}
		if !known || !ok {
			return nil, fmt.Errorf("session value %v of type %T", k, v)
		}
		m[key] = v
	}
	return json.Marshal(m)
}

// errValues: a row's values are neither what encodeValues writes nor an
// older row's gob.
var errValues = errors.New("session values unreadable")

// decodeValues reads what encodeValues wrote, or an older row's gob.
func decodeValues(data []byte) (map[any]any, error) {
	if v, ok := readValues(data); ok {
		return v, nil
	}
	if v, err := unmarshalValues(data); err == nil {
		return v, nil
	}
	var v map[any]any
	if gob.NewDecoder(bytes.NewReader(data)).Decode(&v) != nil {
		return nil, errValues
	}
	return v, nil
}

// readValues reads the values without encoding/json's reflection, when
// they are within what jsonscan reads (strings without escapes, which ids,
// hashes and timestamps are). Anything else is left to unmarshalValues.
func readValues(data []byte) (map[any]any, bool) {
	r := jsonscan.NewReader(data)
	v := make(map[any]any, 8)
	ok := r.Object(true, func(key string) (ok bool) {
		kind, known := valueKinds[key]
		switch {
		case !known:
			return false
		case kind == kindString:
			v[key], ok = r.Str()
		case kind == kindStrings:
			v[key], ok = r.Strs()
		case kind == kindInt:
			v[key], ok = r.Int()
		}
		return ok
	})
	return v, ok && r.End()
}

// unmarshalValues reads the values with encoding/json.
func unmarshalValues(data []byte) (map[any]any, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	v := make(map[any]any, len(raw))
	for key, msg := range raw {
		kind, known := valueKinds[key]
		if !known {
			return nil, fmt.Errorf("session value %q", key)
		}
		var err error
		switch kind {
		case kindString:
			var s string
			err = json.Unmarshal(msg, &s)
			v[key] = s
		case kindStrings:
			var l []string
			err = json.Unmarshal(msg, &l)
			v[key] = l
		case kindInt:
			var n int64
			err = json.Unmarshal(msg, &n)
			v[key] = n
		}
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}
