package httpx

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
)

// NewLogHandler wraps h so that every record logged with a context (the
// ...Context and LogAttrs methods of slog.Logger) gets request_id and
// client_ip attributes taken from that context, when the request went
// through RequestID and ClientIP. Records that already carry an attribute of
// the same name (the access log, for one) are left alone, so the key never
// appears twice. Records logged inside a WithGroup get the attributes inside
// that group.
//
// It also bounds what a record carries, since much of it comes from
// requests: the message and every string, error text, and key and value
// of a map[string]string or []string attribute (in groups too) is cut to
// MaxLogValue bytes with Truncate, and a map or slice to maxLogItems
// entries. Other values pass as they are.
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
	rec = boundRecord(rec)
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
	bounded := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		bounded[i] = boundAttr(a)
	}
	return &logHandler{inner: h.inner.WithAttrs(bounded)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{inner: h.inner.WithGroup(name)}
}

// MaxLogValue is the most bytes of one string a log record carries.
const MaxLogValue = 1024

// maxLogItems is the most entries of one map or slice a record carries.
const maxLogItems = 32

// boundRecord returns rec if nothing in it is too long (the common case,
// checked without allocating), and otherwise a copy with every value
// bounded.
func boundRecord(rec slog.Record) slog.Record {
	over := len(rec.Message) > MaxLogValue
	rec.Attrs(func(a slog.Attr) bool {
		over = over || oversize(a.Value)
		return !over
	})
	if !over {
		return rec
	}
	out := slog.NewRecord(rec.Time, rec.Level, Truncate(rec.Message, MaxLogValue), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(boundAttr(a))
		return true
	})
	return out
}

func oversize(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindString:
		return len(v.String()) > MaxLogValue
	case slog.KindGroup:
		return slices.ContainsFunc(v.Group(), func(a slog.Attr) bool { return oversize(a.Value) })
	case slog.KindLogValuer:
		return true // resolved, and so checked, on the slow path only
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return len(x.Error()) > MaxLogValue
		case map[string]string:
			if len(x) > maxLogItems {
				return true
			}
			for k, s := range x {
				if len(k) > MaxLogValue || len(s) > MaxLogValue {
					return true
				}
			}
		case []string:
			return len(x) > maxLogItems || slices.ContainsFunc(x, func(s string) bool { return len(s) > MaxLogValue })
		}
	}
	return false
}

func boundAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Truncate(v.String(), MaxLogValue))
	case slog.KindGroup:
		group := v.Group()
		bounded := make([]slog.Attr, len(group))
		for i, g := range group {
			bounded[i] = boundAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(bounded...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			if len(x.Error()) > MaxLogValue {
				return slog.String(a.Key, Truncate(x.Error(), MaxLogValue))
			}
		case map[string]string:
			return slog.Any(a.Key, TruncateMap(x, maxLogItems, MaxLogValue, MaxLogValue))
		case []string:
			return slog.Any(a.Key, truncateSlice(x))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func truncateSlice(s []string) []string {
	n := len(s)
	if n > maxLogItems {
		s = s[:maxLogItems-1]
	}
	out := make([]string, len(s), len(s)+1)
	for i, v := range s {
		out[i] = Truncate(v, MaxLogValue)
	}
	if n > maxLogItems {
		out = append(out, Ellipsis+" "+strconv.Itoa(n-len(s))+" more")
	}
	return out
}
