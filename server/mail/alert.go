package mail

import (
	"net/url"
	"slices"
	"time"
)

var alertKind = parseKind("alert")

// Alert tells an administrator who asked for it of one alerting audit
// event, the same events the alert webhooks carry.
type Alert struct {
	Issuer      string
	Email, Name string // the administrator's
	// Summary is keygate's own words for the event type, used in the
	// subject: "A sign-in was denied".
	Summary string
	Type    string // the event type, e.g. "signin.denied"
	Seq     int64  // the event's place in the audit log
	Result  string
	User    string // whom it concerns, in words ("" for no one)
	Actor   string
	IP      string
	Time    time.Time
	// Details are the event's details; they name things and never carry
	// credentials, but some are chosen by users, so none reaches a header.
	Details map[string]string
}

// AlertDetail is one of an alert's details, in key order.
type AlertDetail struct{ Key, Value string }

// Message renders the alert; its only link is the console's audit log.
func (a Alert) Message() (Message, error) {
	v, err := newView(a.Issuer, "")
	if err != nil {
		return Message{}, err
	}
	v.Subject = "Alert at " + v.Host + ": " + oneLine(a.Summary)
	keys := make([]string, 0, len(a.Details))
	for k := range a.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	details := make([]AlertDetail, len(keys))
	for i, k := range keys {
		details[i] = AlertDetail{oneLine(k), oneLine(a.Details[k])}
	}
	auditURL := a.Issuer + "/admin/audit?type=" + url.QueryEscape(oneLine(a.Type))
	if err := underIssuer(auditURL, a.Issuer); err != nil {
		return Message{}, err
	}
	data := struct {
		view
		Name, Summary, Type, Result, User, Actor, IP, Time, AuditURL string
		Seq                                                          int64
		Details                                                      []AlertDetail
	}{v, oneLine(a.Name), oneLine(a.Summary), oneLine(a.Type), oneLine(a.Result), oneLine(a.User), oneLine(a.Actor),
		oneLine(a.IP), a.Time.UTC().Format(expiresLayout), auditURL, a.Seq, details}
	return alertKind.render(a.Email, a.Name, v.Subject, data)
}
