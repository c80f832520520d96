package mailtest

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"
)

// Part returns the decoded body part of media type mediaType
// ("text/plain", "text/html") of a message, or fails t.
func (r Received) Part(t testing.TB, mediaType string) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", r.Header.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		if mt == mediaType {
			return decode(t, r.Header.Get("Content-Transfer-Encoding"), bytes.NewReader(r.Body))
		}
		t.Fatalf("the message is %s, not %s", mt, mediaType)
	}
	mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt == mediaType {
			return decode(t, p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	t.Fatalf("the message has no %s part", mediaType)
	return ""
}

func decode(t testing.TB, encoding string, r io.Reader) string {
	t.Helper()
	if strings.EqualFold(encoding, "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Subject is the decoded Subject header.
func (r Received) Subject(t testing.TB) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(r.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// To is the one address of the To header, its name decoded.
func (r Received) To(t testing.TB) *mail.Address {
	t.Helper()
	list, err := r.Header.AddressList("To")
	if err != nil || len(list) != 1 {
		t.Fatalf("To %q: %v addresses, err %v", r.Header.Get("To"), len(list), err)
	}
	return list[0]
}

var urlIn = regexp.MustCompile(`https?://[^\s<>"]+`)

// Link is the first URL in the text part that starts with prefix, or fails t.
func (r Received) Link(t testing.TB, prefix string) string {
	t.Helper()
	for _, u := range urlIn.FindAllString(r.Part(t, "text/plain"), -1) {
		if strings.HasPrefix(u, prefix) {
			return u
		}
	}
	t.Fatalf("no link to %s in the text:\n%s", prefix, r.Part(t, "text/plain"))
	return ""
}
