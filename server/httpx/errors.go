package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// HandlerFunc is a handler that reports failure by returning an error
// instead of writing the error response itself. Wrap it with Adapt.
// A handler must not return an error after it started writing a response.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Error is an error with the HTTP status and the message that may be shown
// to the caller. Public must be safe to display (no internal detail); Err is
// the hidden cause, logged but never sent.
type Error struct {
	Status int
	Public string
	Err    error
}

// Errorf returns an *Error. (The name follows the fmt convention for "make an
// error"; there is no format string: build Public with fmt.Sprintf if needed
// and mind that it is shown to the caller.)
func Errorf(status int, public string, cause error) *Error {
	return &Error{Status: status, Public: public, Err: cause}
}

// Error returns "<status> <public>: <cause>" for logs; it includes the cause
// and so must never be written to a response.
func (e *Error) Error() string {
	s := strconv.Itoa(e.Status) + " " + e.Public
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorRenderer writes an error response with the given status and public
// message: HTML for pages, JSON for APIs. It is injected into Adapt.
type ErrorRenderer func(w http.ResponseWriter, r *http.Request, status int, public string)

// TextError is the ErrorRenderer Adapt uses when given nil: a plain-text
// body as written by http.Error, with Cache-Control: no-store.
func TextError(w http.ResponseWriter, r *http.Request, status int, public string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, public, status)
}

const genericPublic = "Something went wrong"

const unavailablePublic = "keygate cannot reach its database just now. Try again in a moment."

// isUnavailable reports whether err, or an error it wraps, says a
// dependency is down for a while (it has an Unavailable method that says
// so, as storage.ErrUnavailable does): a 503 to retry, not a 500 bug.
func isUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// Adapt turns h into an http.Handler. When h returns an error:
//
//   - an *Error (found with errors.As, so wrapping is fine) is rendered with
//     its Status and Public message; it is logged at Error level for 5xx
//     statuses, at Info level for 4xx with a cause and at Debug level for
//     4xx without one; the cause is never sent. A Status outside
//     400–599 is treated as 500; an empty Public becomes the status text.
//   - an *http.MaxBytesError (the body exceeded BodyLimit) becomes 413.
//   - an error with an Unavailable method that reports true (a database
//     that cannot be reached) becomes 503 with Retry-After.
//   - any other error becomes 500 "Something went wrong" and is logged at
//     Error level.
//
// Every log record carries the method, path (never the query), status,
// error and request_id. If the handler already started the response (as
// far as can be told: when AccessLog or Recover wrapped the writer) the
// error is only logged. nil render means TextError; nil logger means
// slog.Default().
func Adapt(render ErrorRenderer, logger *slog.Logger, h HandlerFunc) http.Handler {
	if render == nil {
		render = TextError
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status, public := http.StatusInternalServerError, genericPublic
		level := slog.LevelError
		var he *Error
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &he):
			status, public = he.Status, he.Public
			if status < 400 || status > 599 {
				status = http.StatusInternalServerError
			}
			if public == "" {
				public = http.StatusText(status)
			}
			if status < 500 {
				// An expected rejection: worth a line only when it
				// has a hidden cause to explain it.
				level = slog.LevelDebug
				if he.Err != nil {
					level = slog.LevelInfo
				}
			}
		case errors.As(err, &mbe):
			status, public = http.StatusRequestEntityTooLarge, "Request body too large"
			level = slog.LevelInfo
		case isUnavailable(err):
			status, public = http.StatusServiceUnavailable, unavailablePublic
			w.Header().Set("Retry-After", "5")
		}

		l := logger
		if l == nil {
			l = slog.Default()
		}
		started := false
		if rw := findResponseWriter(w); rw != nil && rw.wroteHeader {
			started = true
			level = slog.LevelError
		}
		msg := "request failed"
		if started {
			msg = "handler returned an error after writing the response"
		}
		l.LogAttrs(r.Context(), level, msg,
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.String("error", err.Error()),
			slog.String("request_id", RequestIDFrom(r.Context())),
		)
		if !started {
			render(w, r, status, public)
		}
	})
}

// WriteJSON writes v as a JSON response with the given status,
// Content-Type: application/json and Cache-Control: no-store. v is encoded
// before anything is written, so an encoding failure yields a clean 500
// {"error":"server_error"} instead of a truncated body. A JSONAppender
// writes itself; anything else is encoded by encoding/json.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer putJSONBuffer(buf)
	if err := encodeJSON(buf, v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"server_error"}` + "\n")
	}
	// As SecurityHeaders does: one array for the three values instead of
	// an allocation each; the keys are canonical.
	hv := &[3]string{"application/json", "no-store", strconv.Itoa(buf.Len())}
	h := w.Header()
	h["Content-Type"] = hv[0:1:1]
	h["Cache-Control"] = hv[1:2:2]
	h["Content-Length"] = hv[2:3:3]
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// jsonBuffers hold the bodies WriteJSON encodes. Write copies a body out
// (an io.Writer must not keep it), so its buffer serves the next one.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putJSONBuffer returns buf to the pool unless a large body grew it.
func putJSONBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 64<<10 {
		return
	}
	buf.Reset()
	jsonBuffers.Put(buf)
}

// encodeJSON writes v and a newline to buf.
func encodeJSON(buf *bytes.Buffer, v any) error {
	a, ok := v.(JSONAppender)
	if !ok {
		// Encode writes nothing at all when v cannot be encoded.
		return json.NewEncoder(buf).Encode(v)
	}
	b, err := a.AppendJSON(buf.AvailableBuffer())
	if err != nil {
		return err
	}
	buf.Write(b)
	return buf.WriteByte('\n')
}

// JSONAppender is a value that writes its own JSON, exactly as
// encoding/json would encode it (compact, HTML characters escaped), for
// an answer served so often that encoding/json's reflection shows: the
// implementation is best tested against json.Marshal of the same value.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// AppendJSONString appends s as encoding/json encodes a string.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// Escapes, and what is not plain ASCII, as encoding/json
			// writes them; a string cannot fail to encode.
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
