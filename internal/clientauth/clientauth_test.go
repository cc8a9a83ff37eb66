package clientauth

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzCredentials: any Authorization header and body yields credentials or
// an OAuth error, never a panic; Basic credentials are form-urlencoded
// (RFC 6749 §2.3.1) and agree with a client_id in the body.
func FuzzCredentials(f *testing.F) {
	for _, s := range [][2]string{{"Basic bm90ZXM6c2VjcmV0", ""}, {"", "client_id=cli"}, {"", "client_id=notes&client_secret=s"},
		{"Basic bm90ZXM6c2VjcmV0", "client_secret=s"}, {"Basic !!!", ""}, {"Bearer x", ""}, {"Basic Ojo=", "client_id=a&client_id=b"},
		{"Basic JTpz", ""}, {"", "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=e30.e30.e30"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, auth, body string) {
		r := httptest.NewRequest("POST", "/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if r.ParseForm() != nil {
			return
		}
		id, secret, method, err := credentials(r)
		if err != nil {
			return
		}
		switch method {
		case MethodBasic:
			user, pass, ok := r.BasicAuth()
			if !ok || url.QueryEscape(id) == "" || (unescape(user) != id || unescape(pass) != secret) {
				t.Fatalf("basic %q → %q %q", auth, id, secret)
			}
		case methodAssertion:
			if r.PostForm.Get("client_assertion_type") != AssertionType || secret != r.PostForm.Get("client_assertion") {
				t.Fatalf("assertion %q → %q", body, id)
			}
			if iss, err := assertionIssuer(secret); err != nil || iss != id {
				t.Fatalf("assertion of %q taken as %q", iss, id)
			}
		case MethodPost, MethodNone:
			if id == "" || id != r.PostForm.Get("client_id") || secret != r.PostForm.Get("client_secret") {
				t.Fatalf("form %q → %q %q", body, id, secret)
			}
		default:
			t.Fatalf("unknown method %q", method)
		}
	})
}

func unescape(s string) string {
	u, _ := url.QueryUnescape(s)
	return u
}
