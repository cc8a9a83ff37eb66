package server_test

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// The handler fuzzers send arbitrary requests to the whole server: whatever
// the input, the answer is an OAuth or HTTP client error or a success,
// never a 5xx and never a panic (Harden turns a panic into a 500).

func FuzzAuthorize(f *testing.F) {
	for _, q := range []string{"", "response_type=code&client_id=notes&redirect_uri=https%3A%2F%2Fnotes.example%2Fcallback&scope=openid&state=s&code_challenge=" +
		strings.Repeat("a", 43) + "&code_challenge_method=S256", "client_id=notes&client_id=x", "redirect_uri=%zz", "response_type=token&client_id=notes",
		"scope=" + strings.Repeat("x ", 5000), "request_uri=urn:x&client_id=notes", "prompt=none&max_age=-1&client_id=notes"} {
		f.Add(q)
	}
	s := newBench(f)
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest("GET", "/authorize", nil)
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("GET /authorize?%s: %d %s", query, w.Code, w.Body)
		}
	})
}

func FuzzToken(f *testing.F) {
	for _, s := range [][2]string{{"grant_type=client_credentials&scope=files.read", "Basic bm90ZXM6bm90ZXMtc2VjcmV0LWZvci1iZW5jaG1hcmtzLTAxMjM0NTY3ODk="},
		{"grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Fnotes.example%2Fcallback&code_verifier=" + strings.Repeat("v", 43), ""},
		{"grant_type=refresh_token&refresh_token=x&client_id=notes", ""}, {"grant_type=password&username=a&password=b", ""},
		{"grant_type=client_credentials&scope=%zz", "Basic !"}, {"a=1&a=2", ""}} {
		f.Add(s[0], s[1])
	}
	s := newBench(f)
	f.Fuzz(func(t *testing.T, body, auth string) {
		for _, path := range []string{"/token", "/introspect", "/revoke", "/par", "/device_authorization"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			w := httptest.NewRecorder()
			s.h.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("POST %s %q (%q): %d %s", path, body, auth, w.Code, w.Body)
			}
			if w.Code >= 300 && !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("POST %s %q: %d without an OAuth error body: %s", path, body, w.Code, w.Body)
			}
		}
	})
}
