package admin

import (
	"net/http"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/notice"
)

// alertMailPage turns the signed-in user's alert mail on or off: every
// alerting audit event, the ones the webhooks carry, mailed to them while
// they hold a console role and are not suspended (notice.SetAlertMail).
// Anyone with a console role may ask, for themselves only.
func (h *Handler) alertMailPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if p.service() || p.User.Role == "" {
		return httpx.Errorf(http.StatusForbidden, "Only a signed-in user with a console role can ask for alert mail.", nil)
	}
	var on bool
	switch r.PostFormValue("alert_mail") {
	case "on":
		on = true
	case "off":
	default:
		return httpx.Errorf(http.StatusBadRequest, "Say on or off.", nil)
	}
	if err := notice.SetAlertMail(r.Context(), h.d.Store, p.User.ID, on); err != nil {
		return err
	}
	code := "alert-mail-off"
	if on {
		code = "alert-mail-on"
	}
	http.Redirect(w, r, withNotice("/admin/users", code), http.StatusSeeOther)
	return nil
}
