package token

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
)

// FuzzParseForm: a token request body is accepted only as a form in which
// every parameter appears once, within MaxFormBytes; anything else is an
// invalid_request, never a panic.
func FuzzParseForm(f *testing.F) {
	for _, s := range [][2]string{{"application/x-www-form-urlencoded", "grant_type=client_credentials"},
		{"application/x-www-form-urlencoded; charset=utf-8", "a=1&a=2"}, {"application/json", "{}"}, {"", "a=%zz"},
		{"application/x-www-form-urlencoded", "a=%zz;b"}, {"multipart/form-data; boundary=x", "--x--"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest("POST", "/token", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if err := ParseForm(r); err != nil {
			if oautherr.Code(err) != oautherr.InvalidRequest {
				t.Fatalf("error %v is not invalid_request", err)
			}
			return
		}
		for k, v := range r.PostForm {
			if len(v) != 1 && k != "audience" && k != "resource" {
				t.Fatalf("parameter %q accepted %d times", k, len(v))
			}
		}
		if len(body) > MaxFormBytes {
			t.Fatalf("accepted a body of %d bytes", len(body))
		}
	})
}
