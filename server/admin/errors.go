package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/storage"
)

// codedError is an API error with its machine-readable code:
// {"error": code, "error_description": desc}.
type codedError struct {
	status     int
	code, desc string
}

func (e *codedError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.desc) }

func apiErr(status int, code, desc string) error {
	return &codedError{status: status, code: code, desc: desc}
}

// codeFor is the error code of a status without a more specific one.
func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	}
	if status >= 500 {
		return "server_error"
	}
	return "invalid_request"
}

// publicError turns what manage and storage report into an *httpx.Error
// whose message may be shown; anything else is returned unchanged (and
// becomes a logged 500).
func publicError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, manage.ErrInvalid):
		return httpx.Errorf(http.StatusBadRequest, message(err, manage.ErrInvalid), nil)
	case errors.Is(err, manage.ErrNotFound):
		return httpx.Errorf(http.StatusNotFound, message(err, manage.ErrNotFound), nil)
	case errors.Is(err, storage.ErrNotFound):
		return httpx.Errorf(http.StatusNotFound, "Not found.", nil)
	case errors.Is(err, storage.ErrAlreadyExists), errors.Is(err, storage.ErrConflict):
		return httpx.Errorf(http.StatusConflict, "That conflicts with a change made meanwhile; reload and try again.", err)
	}
	return err
}

// message is the part of err's text after sentinel's, as a sentence. One
// that begins with an email address keeps it as it is written.
func message(err, sentinel error) string {
	msg := err.Error()
	if i := strings.Index(msg, sentinel.Error()+": "); i >= 0 {
		msg = msg[i+len(sentinel.Error())+2:]
	}
	if first, _, _ := strings.Cut(msg, " "); !strings.Contains(first, "@") {
		r, n := utf8.DecodeRuneInString(msg)
		msg = string(unicode.ToUpper(r)) + msg[n:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// pageError prepares a page handler's error for httpx.Adapt.
func pageError(err error) error { return publicError(err) }

// apiError prepares an API handler's error: every error with a known
// status becomes a codedError; the rest is left to Adapt (a logged 500).
func apiError(err error) error {
	err = publicError(err)
	var ce *codedError
	if err == nil || errors.As(err, &ce) {
		return err
	}
	var he *httpx.Error
	if errors.As(err, &he) && he.Status >= 400 && he.Status < 500 {
		return &codedError{status: he.Status, code: codeFor(he.Status), desc: he.Public}
	}
	return err
}

// writeAPIError is the API's httpx.ErrorRenderer.
func writeAPIError(w http.ResponseWriter, _ *http.Request, status int, public string) {
	httpx.WriteJSON(w, status, map[string]string{"error": codeFor(status), "error_description": public})
}

// writeCoded writes a codedError if err is one and reports whether it did.
func writeCoded(w http.ResponseWriter, err error) bool {
	var ce *codedError
	if !errors.As(err, &ce) {
		return false
	}
	httpx.WriteJSON(w, ce.status, map[string]string{"error": ce.code, "error_description": ce.desc})
	return true
}

// ProblemData is the console's error page.
type ProblemData struct {
	Base
	Status    int
	Message   string
	Back      string
	RequestID string
}

// problem renders the console's error page for p (nil when the guard
// turned the request away): the message and a way back to the page the
// action came from.
func (h *Handler) problem(w http.ResponseWriter, r *http.Request, p *principal, status int, public string) {
	back := formPage(r.URL.Path)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		back = "/admin"
		if len(parts) >= 2 {
			back = "/" + parts[0] + "/" + parts[1]
		}
	}
	data := ProblemData{Status: status, Message: public, Back: back, RequestID: httpx.RequestIDFrom(r.Context())}
	if p != nil {
		data.Base = Base{Me: p.User.Email, MyRole: p.User.Role, Can: p.can()}
	}
	h.d.Render.Page(w, r, status, render.PageAdminProblem, http.StatusText(status), data)
}
