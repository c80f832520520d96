package httpx

import (
	"context"
	"net/http"
	"net/netip"
)

// requestInfo is the one per-request record the middlewares of this package
// share. Whichever middleware runs first creates it (and with it the single
// derived *http.Request); the others fill in their fields before calling the
// next handler. Fields are written only before next.ServeHTTP is called, so
// anything the handler starts (goroutines included) sees a settled value.
type requestInfo struct {
	id    string
	ip    netip.Addr
	nonce string
}

type infoKey struct{}

// infoCtx carries requestInfo inline so that attaching it costs one
// allocation instead of two (a context.WithValue node plus the record).
// Value delegates every other key to the parent, so cancellation and
// deadline propagation work exactly as for any derived context.
type infoCtx struct {
	context.Context
	info requestInfo
}

func (c *infoCtx) Value(key any) any {
	if key == (infoKey{}) {
		return &c.info
	}
	return c.Context.Value(key)
}

func infoFrom(ctx context.Context) *requestInfo {
	if ctx == nil {
		return nil
	}
	info, _ := ctx.Value(infoKey{}).(*requestInfo)
	return info
}

// withInfo returns r (unchanged) and its record when one is already
// attached, or a shallow copy of r carrying a fresh record.
func withInfo(r *http.Request) (*http.Request, *requestInfo) {
	if info := infoFrom(r.Context()); info != nil {
		return r, info
	}
	c := &infoCtx{Context: r.Context()}
	return r.WithContext(c), &c.info
}

// RequestIDFrom returns the request id set by the RequestID middleware, or
// "" when the context does not come from a request that passed through it.
func RequestIDFrom(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		return info.id
	}
	return ""
}

// ClientIPFrom returns the client address resolved by the ClientIP
// middleware. The zero netip.Addr (IsValid() == false) means unknown: the
// middleware did not run or RemoteAddr was not an IP address (e.g. a Unix
// socket).
func ClientIPFrom(ctx context.Context) netip.Addr {
	if info := infoFrom(ctx); info != nil {
		return info.ip
	}
	return netip.Addr{}
}

// NonceFrom returns the CSP nonce the SecurityHeaders middleware put in this
// response's Content-Security-Policy header, for use as the nonce attribute
// of inline <script> elements. It is "" when SecurityHeaders did not run.
func NonceFrom(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		return info.nonce
	}
	return ""
}
