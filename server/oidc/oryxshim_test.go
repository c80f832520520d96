package oidc

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/x/errorsx"
	"github.com/ory/x/otelx"
	pkgerrors "github.com/pkg/errors"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// fosite's calls into github.com/ory/x land in keygate's own stand-in
// (internal/oryxshim, through go.mod's replace). These tests hold it to what
// fosite relies on: its errors come out of WithStack as the same RFC 6749
// errors, and its spans end whatever happens.

func TestFositeErrorsThroughWithStack(t *testing.T) {
	t.Run("a fosite error keeps its RFC 6749 identity", func(t *testing.T) {
		err := errorsx.WithStack(fosite.ErrInvalidGrant.WithHint("The code was used before."))
		var rfc *fosite.RFC6749Error
		if !errors.As(err, &rfc) || rfc.ErrorField != "invalid_grant" || rfc.HintField != "The code was used before." {
			t.Fatalf("errors.As = %v, %#v", errors.As(err, &rfc), rfc)
		}
		if !errors.Is(err, fosite.ErrInvalidGrant) {
			t.Error("errors.Is(err, ErrInvalidGrant) is false")
		}
		if got := fosite.ErrorToRFC6749Error(err).ErrorField; got != "invalid_grant" {
			t.Errorf("ErrorToRFC6749Error = %q", got)
		}
	})
	t.Run("an error without a stack trace gets one, and causes to itself", func(t *testing.T) {
		plain := errors.New("plain")
		err := errorsx.WithStack(plain)
		st, ok := err.(interface{ StackTrace() pkgerrors.StackTrace })
		if !ok || len(st.StackTrace()) == 0 {
			t.Fatalf("WithStack(plain) = %#v has no stack trace", err)
		}
		if errorsx.Cause(err) != plain || !errors.Is(err, plain) {
			t.Error("the wrapped error is not its cause")
		}
	})
	t.Run("an error that has a stack trace is returned as it is", func(t *testing.T) {
		traced := pkgerrors.New("traced")
		if got := errorsx.WithStack(traced); got != traced {
			t.Errorf("WithStack wrapped it again: %#v", got)
		}
	})
	t.Run("nil stays nil", func(t *testing.T) {
		if errorsx.WithStack(nil) != nil || errorsx.Cause(nil) != nil {
			t.Error("nil became an error")
		}
	})
	t.Run("Cause stops at an error whose cause is nil", func(t *testing.T) {
		rfc := fosite.ErrInvalidRequest.WithHint("no cause")
		if got := errorsx.Cause(pkgerrors.WithStack(rfc)); got != rfc {
			t.Errorf("Cause = %#v, want the fosite error", got)
		}
	})
}

// recordingSpan remembers how a span was ended; it is a no-op span otherwise.
type recordingSpan struct {
	trace.Span
	ended    int
	code     codes.Code
	desc     string
	recorded []error
}

func (s *recordingSpan) End(...trace.SpanEndOption) { s.ended++ }

func (s *recordingSpan) SetStatus(c codes.Code, desc string) { s.code, s.desc = c, desc }

func (s *recordingSpan) RecordError(err error, _ ...trace.EventOption) {
	s.recorded = append(s.recorded, err)
}

func newRecordingSpan() *recordingSpan {
	return &recordingSpan{Span: trace.SpanFromContext(context.Background())}
}

// traced is how fosite uses otelx.End.
func traced(span trace.Span, f func() error) (err error) {
	defer otelx.End(span, &err)
	return f()
}

func TestOtelxEnd(t *testing.T) {
	t.Run("a call that succeeds ends its span unmarked", func(t *testing.T) {
		span := newRecordingSpan()
		if err := traced(span, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if span.ended != 1 || span.code != codes.Unset || len(span.recorded) != 0 {
			t.Errorf("span = %+v", span)
		}
	})
	t.Run("a call that fails marks its span and returns its error unchanged", func(t *testing.T) {
		span := newRecordingSpan()
		want := fosite.ErrInvalidClient
		if err := traced(span, func() error { return want }); err != want {
			t.Fatalf("err = %v", err)
		}
		if span.ended != 1 || span.code != codes.Error || span.desc != want.Error() ||
			len(span.recorded) != 1 || span.recorded[0] != want {
			t.Errorf("span = %+v", span)
		}
	})
	t.Run("a call that panics marks its span, which ends, and the panic goes on", func(t *testing.T) {
		span := newRecordingSpan()
		var recovered any
		func() {
			defer func() { recovered = recover() }()
			_ = traced(span, func() error { panic("boom") })
		}()
		if recovered != "boom" {
			t.Fatalf("recovered %v, want the original panic", recovered)
		}
		if span.ended != 1 || span.code != codes.Error || span.desc != "panic: boom" {
			t.Errorf("span = %+v", span)
		}
	})
}
