package httpx

import (
	"context"
	"log/slog"
)

// NewLogHandler wraps h so that every record logged with a context (the
// ...Context and LogAttrs methods of slog.Logger) gets request_id and
// client_ip attributes taken from that context, when the request went
// through RequestID and ClientIP. Records that already carry an attribute of
// the same name (the access log, for one) are left alone, so the key never
// appears twice. Records logged inside a WithGroup get the attributes inside
// that group.
func NewLogHandler(h slog.Handler) slog.Handler {
	if lh, ok := h.(*logHandler); ok {
		return lh
	}
	return &logHandler{inner: h}
}

type logHandler struct {
	inner slog.Handler
}

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, rec slog.Record) error {
	info := infoFrom(ctx)
	if info == nil || (info.id == "" && !info.ip.IsValid()) {
		return h.inner.Handle(ctx, rec)
	}
	hasID, hasIP := false, false
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "request_id":
			hasID = true
		case "client_ip":
			hasIP = true
		}
		return !(hasID && hasIP)
	})
	// Clone so that adding attributes cannot touch storage the caller's
	// copy of the record shares.
	rec = rec.Clone()
	if info.id != "" && !hasID {
		rec.AddAttrs(slog.String("request_id", info.id))
	}
	if info.ip.IsValid() && !hasIP {
		rec.AddAttrs(slog.String("client_ip", info.ip.String()))
	}
	return h.inner.Handle(ctx, rec)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{inner: h.inner.WithAttrs(attrs)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{inner: h.inner.WithGroup(name)}
}
