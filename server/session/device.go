package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// deviceCookieLifetime: a device stays recognised for about a year of
// absence; each sign-in renews the cookie.
const deviceCookieLifetime = 400 * 24 * time.Hour

// Devices issues and reads the long-lived device cookie: a random id and
// an HMAC over it, so a forged or edited id is simply not recognised. The
// id only names a browser; what it means (which user signed in from it,
// when, where) lives server-side.
type Devices struct {
	key    []byte
	secure bool
	name   string
}

func NewDevices(key []byte, secure bool) *Devices {
	name := "keygate_device"
	if secure {
		name = "__Host-keygate_device"
	}
	return &Devices{key: key, secure: secure, name: name}
}

// ID returns the request's device id, or "" if it has none or a bad one.
func (d *Devices) ID(r *http.Request) string {
	c, err := r.Cookie(d.name)
	if err != nil {
		return ""
	}
	id, mac, ok := strings.Cut(c.Value, ".")
	if !ok || len(id) != 43 {
		return ""
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, d.mac(id)) {
		return ""
	}
	return id
}

// Ensure returns the device id, issuing a new cookie when there is none.
func (d *Devices) Ensure(w http.ResponseWriter, r *http.Request) string {
	if id := d.ID(r); id != "" {
		return id
	}
	id := randomID()
	http.SetCookie(w, &http.Cookie{
		Name: d.name, Value: id + "." + base64.RawURLEncoding.EncodeToString(d.mac(id)),
		Path: "/", MaxAge: int(deviceCookieLifetime.Seconds()),
		HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteLaxMode,
	})
	return id
}

func (d *Devices) mac(id string) []byte {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte("device:" + id))
	return m.Sum(nil)
}
