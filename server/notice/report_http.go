package notice

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/storage"
)

const reportPath = "/signin/report"

// Deps is what the "this wasn't me" pages need.
type Deps struct {
	Store   storage.Store
	Manager *manage.Manager
	Render  *render.Renderer
	Issuer  string
	Logger  *slog.Logger
	Now     func() time.Time
}

// Handler serves the "this wasn't me" link.
type Handler struct{ d Deps }

func NewHandler(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Handler{d: d}
}

func (h *Handler) Routes() []httpx.Route {
	page := func(f httpx.HandlerFunc) http.Handler { return httpx.Adapt(h.d.Render.Error, h.d.Logger, f) }
	return []httpx.Route{
		{Method: http.MethodGet, Pattern: reportPath, Guard: httpx.GuardPublic, Handler: page(h.showReport)},
		{Method: http.MethodPost, Pattern: reportPath, Guard: httpx.GuardPublic, Handler: page(h.confirmReport)},
	}
}

// ReportData is the confirmation page's view.
type ReportData struct {
	Token string
	Time  string // of the sign-in
}

// showReport shows what confirming will do. It changes nothing: mail
// scanners and link previews follow links.
func (h *Handler) showReport(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	l, err := h.d.Store.GetLink(r.Context(), storage.LinkSignInReport, keys.HashToken(token), h.d.Now())
	if errors.Is(err, storage.ErrNotFound) {
		h.gone(w, r)
		return nil
	}
	if err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageReport, "Was this sign-in not you?",
		ReportData{Token: token, Time: l.CreatedAt.UTC().Format("Mon 2 January 2006, 15:04 MST")})
	return nil
}

// confirmReport ends the reported sign-in. The visitor is signed out, so
// there is no session to hold a CSRF token: the link's token in the form
// is the credential, which another site cannot know, and a request
// another site's page made (by Origin or Sec-Fetch-Site) is refused too.
func (h *Handler) confirmReport(w http.ResponseWriter, r *http.Request) error {
	if !h.sameOrigin(r) {
		return httpx.Errorf(http.StatusForbidden, "This form must be sent from keygate's own page.", nil)
	}
	token := r.PostFormValue("token")
	ip := ""
	if a := httpx.ClientIPFrom(r.Context()); a.IsValid() {
		ip = a.String()
	}
	err := h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		l, err := h.d.Store.ConsumeLink(ctx, storage.LinkSignInReport, keys.HashToken(token), h.d.Now())
		if err != nil {
			return err
		}
		_, err = h.d.Manager.As(l.UserID, ip, r.UserAgent()).ReportSignIn(ctx, l.UserID, l.SID, l.DeviceID)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		h.gone(w, r)
		return nil
	}
	if err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageMessage, "That sign-in has ended", render.MessageData{
		Message: "That sign-in has ended: its browser is signed out of keygate and of every app it reached, " +
			"and keygate no longer recognises its device. Your security team has been alerted. " +
			"What to do now: change your password (use “Forgot password?” on the sign-in page), " +
			"and tell your security team what you know of this sign-in. " +
			"If it happens again, your password is probably known to someone else.",
	})
	return nil
}

// gone answers a link that was used or has expired.
func (h *Handler) gone(w http.ResponseWriter, r *http.Request) {
	h.d.Render.Page(w, r, http.StatusGone, render.PageMessage, "This link no longer works", render.MessageData{
		Message: "This link was used already or has expired; it changes nothing now. " +
			"If a sign-in you did not make is still going on, tell your security team.",
	})
}

// sameOrigin refuses a form another site's page sent. A browser says
// where a request comes from in Sec-Fetch-Site, which decides when sent;
// else in Origin, which is "null" for keygate's own pages (they send no
// referrer) and so proves nothing either way. A client that sends neither
// is not a browser another site can drive.
func (h *Handler) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return true
	}
	want, err := url.Parse(h.d.Issuer)
	return err == nil && origin == want.Scheme+"://"+want.Host
}
