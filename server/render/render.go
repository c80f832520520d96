// Package render parses keygate's page templates once at start — refusing to
// start when one is missing or broken — and writes pages. It holds no
// business logic; handlers pass a title and a view struct.
package render

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/keygate/keygate/server/httpx"
)

// Page names; each is templates/<name>.html defining "content".
const (
	PageError          = "error"
	PageMessage        = "message"
	PageLogin          = "login"
	PageSecondFactor   = "second_factor"
	PageEnrollFactor   = "enroll_factor"
	PageRecovery       = "recovery"
	PageEnrollPassword = "enroll_password"
	PageEnrollTOTP     = "enroll_totp"
	PageRecoveryCodes  = "recovery_codes"
	PageLogout         = "logout"
	PageAccount        = "account"
	PageDenied         = "denied"
	PageReport         = "report"
	PageForgot         = "forgot"
	PageResetPassword  = "reset_password"
)

var pages = []string{PageError, PageMessage, PageLogin, PageSecondFactor, PageEnrollFactor, PageRecovery,
	PageEnrollPassword, PageEnrollTOTP, PageRecoveryCodes, PageLogout, PageAccount, PageDenied,
	PageReport, PageForgot, PageResetPassword}

// Admin console pages; each is templates/admin/<name>.html defining
// "content", rendered in templates/admin/layout.html (wider, with the
// console's navigation) together with templates/admin/parts.html.
const (
	PageAdminUsers   = "admin/users"
	PageAdminUser    = "admin/user"
	PageAdminLink    = "admin/link"
	PageAdminGroups  = "admin/groups"
	PageAdminGroup   = "admin/group"
	PageAdminApps    = "admin/apps"
	PageAdminApp     = "admin/app"
	PageAdminSecret  = "admin/secret"
	PageAdminAudit   = "admin/audit"
	PageAdminVerify  = "admin/verify"
	PageAdminProblem = "admin/problem"
)

var adminPages = []string{PageAdminUsers, PageAdminUser, PageAdminLink, PageAdminGroups, PageAdminGroup,
	PageAdminApps, PageAdminApp, PageAdminSecret, PageAdminAudit, PageAdminVerify, PageAdminProblem}

// Renderer writes parsed pages.
type Renderer struct {
	pages  map[string]*template.Template
	logger *slog.Logger
}

// New parses layout.html with every page in fsys.
func New(fsys fs.FS, logger *slog.Logger) (*Renderer, error) {
	r := &Renderer{pages: map[string]*template.Template{}, logger: logger}
	for _, p := range pages {
		t, err := template.New(p).ParseFS(fsys, "layout.html", p+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", p, err)
		}
		r.pages[p] = t
	}
	for _, p := range adminPages {
		t, err := template.New(p).ParseFS(fsys, "admin/layout.html", "admin/parts.html", p+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", p, err)
		}
		r.pages[p] = t
	}
	return r, nil
}

// view is what every page template receives.
type view struct {
	Title string
	Nonce string
	Data  any
}

// Page renders page with status. Pages are never cached: they carry CSRF
// tokens, one-time secrets and personal data.
func (r *Renderer) Page(w http.ResponseWriter, req *http.Request, status int, page, title string, data any) {
	t, ok := r.pages[page]
	if !ok {
		panic("render: unknown page " + page) // a programming error; New checked the files
	}
	var buf bytes.Buffer
	err := t.ExecuteTemplate(&buf, "layout", view{Title: title, Nonce: httpx.NonceFrom(req.Context()), Data: data})
	if err != nil {
		r.logger.ErrorContext(req.Context(), "render page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// ErrorData is the error page's view.
type ErrorData struct {
	Message   string
	RequestID string
}

// Error renders the error page: a safe message and the request id that
// leads an operator to the logged cause.
func (r *Renderer) Error(w http.ResponseWriter, req *http.Request, status int, message string) {
	r.Page(w, req, status, PageError, http.StatusText(status), ErrorData{
		Message:   message,
		RequestID: httpx.RequestIDFrom(req.Context()),
	})
}

// MessageData is the plain message page's view.
type MessageData struct {
	Message  string
	Link     string
	LinkText string
}
