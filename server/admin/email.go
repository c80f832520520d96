package admin

import (
	"net/http"
	"net/url"
)

// canEmail: a mail server is configured, so the console offers to send
// enrolment links by email.
func (h *Handler) canEmail() bool { return h.d.Manager.Mail != nil }

// tokenOf is the token of an enrolment URL, for the form that mails it.
func tokenOf(enrollmentURL string) string {
	u, err := url.Parse(enrollmentURL)
	if err != nil {
		return ""
	}
	return u.Query().Get("token")
}

// emailLinkPage mails the link the console has just shown to the user it
// belongs to (its token comes back in the form) — that link, not a new
// one, so the user holds one link, not two.
func (h *Handler) emailLinkPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if _, err := h.manager(r, p).EmailEnrollmentLink(r.Context(), id, r.PostFormValue("token")); err != nil {
		return err
	}
	return backToUser(w, r, id, "enrollment-emailed")
}
