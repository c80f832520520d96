// Package otelx is keygate's stand-in for github.com/ory/x/otelx: only End,
// the one function fosite calls, written here from how fosite uses it.
//
// Upstream's package also sets up tracing, and with it links the
// OpenTelemetry SDK, its exporters and gRPC into every binary that imports
// fosite. keygate installs no tracer provider, so fosite's spans are the
// OpenTelemetry API's no-op spans; End still treats them as real ones.
package otelx

import (
	"fmt"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// End ends span when the function that started it returns. fosite calls it
// as `defer otelx.End(span, &err)` with the function's named error result:
// a non-nil error is recorded on the span and marks it failed; a panic marks
// it failed too and then goes on unchanged (End recovers it only to look at
// it, and panics again with the same value). The span is ended in every case.
func End(span trace.Span, err *error) {
	defer span.End()
	if r := recover(); r != nil {
		span.SetStatus(codes.Error, fmt.Sprintf("panic: %v", r))
		panic(r)
	}
	if err != nil && *err != nil {
		span.RecordError(*err)
		span.SetStatus(codes.Error, (*err).Error())
	}
}
