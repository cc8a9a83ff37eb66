package oautherr

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "redirect_uri is missing", "redirect_uri is missing"},
		{"section sign", "see RFC 9700 §2.1.2", "see RFC 9700 section 2.1.2"},
		{"section sign and space", "RFC 6749 § 5.2", "RFC 6749 section 5.2"},
		{"ellipsis", Clip(strings.Repeat("a", 41)), strings.Repeat("a", 40) + "..."},
		{"old ellipsis", "abc…", "abc..."},
		{"quote and backslash", `a "b" \c`, `a 'b' /c`},
		{"control and newline", "a\x00b\nc\td", "a?b c d"},
		{"non-ASCII", "scope é", "scope ?"},
		{"tilde and bang kept", "~!#[]", "~!#[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sanitize(tc.in); got != tc.want {
				t.Fatalf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestWritersSanitize: JSON, WWW-Authenticate and query parameters all
// carry the sanitized text, whatever the caller put in the description.
func TestWritersSanitize(t *testing.T) {
	e := New(InvalidToken, `bad "token" \ é § 3`)
	const want = `bad 'token' / ? section 3`
	w := httptest.NewRecorder()
	WriteBearer(w, e, "realm", "")
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="realm", error="invalid_token", error_description="`+want+`"` {
		t.Fatalf("challenge %s", got)
	}
	if !strings.Contains(w.Body.String(), `"error_description":"`+want+`"`) {
		t.Fatalf("body %s", w.Body)
	}
	if got := e.Params().Get("error_description"); got != want {
		t.Fatalf("params %q", got)
	}
}
