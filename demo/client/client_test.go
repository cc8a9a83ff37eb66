package client

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestMessagesSpeakForTheirAppInThePageLanguage: a message is kept as a
// key and put into words when shown, so the page it lands on speaks its
// language; and one app never speaks as another.
func TestMessagesSpeakForTheirAppInThePageLanguage(t *testing.T) {
	app, err := New("Greedy Games", "greedy_visit", &oauth2.Config{ClientID: "greedy",
		Endpoint: oauth2.Endpoint{AuthURL: "http://auth.example/authorize", TokenURL: "http://auth.example/token"}},
		"http://api.example", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	app.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	resp, err := c.Post(srv.URL+"/signup?lang=en", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("ui_locales") != "en" {
		t.Fatalf("authorization request does not name the app's language: %s", loc)
	}
	get("/callback?error=access_denied&state=" + url.QueryEscape(loc.Query().Get("state")))

	for _, tc := range []struct{ lang, want string }{
		{"en", "You denied access, so Greedy Games has no data"},
		{"ar", "لذا لا يملك Greedy Games أي بيانات"},
		{"en", "You denied access, so Greedy Games has no data"},
	} {
		body := get("/?lang=" + tc.lang)
		if !strings.Contains(body, tc.want) {
			t.Errorf("%s page lacks %q:\n%s", tc.lang, tc.want, body)
		}
		if strings.Contains(body, "Notes") || strings.Contains(body, "الملاحظات") {
			t.Errorf("Greedy Games speaks as Notes in %s:\n%s", tc.lang, body)
		}
	}
}

// TestFailedSteps: the trace opens the answers that are errors.
func TestFailedSteps(t *testing.T) {
	for _, tc := range []struct {
		name, req, resp string
		want            bool
	}{
		{"token refused", "POST http://auth/token", "400 Bad Request\n\n{\"error\":\"invalid_grant\"}", true},
		{"API refused", "GET http://api/files", "401 Unauthorized\nWWW-Authenticate: Bearer error=\"invalid_token\"", true},
		{"server error", "GET http://api/files", "503 Service Unavailable", true},
		{"no answer", "POST http://auth/token", "dial tcp 127.0.0.1:1: connect: connection refused", true},
		{"denied at the callback", "GET /callback?error=access_denied&state=x", "", true},
		{"error after state", "GET /callback?state=x&error=access_denied", "", true},
		{"token issued", "POST http://auth/token", "200 OK\n\n{}", false},
		{"redirect", "GET http://auth/authorize?client_id=notes", "302 Found → the user logs in", false},
		{"callback with a code", "GET /callback?code=abc&state=x", "", false},
	} {
		if got := failed(tc.req, tc.resp); got != tc.want {
			t.Errorf("%s: failed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestChallengeParams: the app reads the RFC 9470 challenge's parameters,
// quoted or not, and tells it from other refusals.
func TestChallengeParams(t *testing.T) {
	p := challengeParams(`Bearer realm="provider-api", error="insufficient_user_authentication", error_description="needs a second factor, recently", acr_values="urn:bawwab:acr:mfa", max_age=900`)
	if p["error"] != "insufficient_user_authentication" || p["acr_values"] != "urn:bawwab:acr:mfa" || p["max_age"] != "900" || p["realm"] != "provider-api" {
		t.Fatalf("params: %v", p)
	}
	if !(&apiResult{Status: 401, Challenge: p}).stepUpWanted() {
		t.Error("a step-up challenge not recognised")
	}
	if (&apiResult{Status: 401, Challenge: challengeParams(`Bearer error="invalid_token"`)}).stepUpWanted() {
		t.Error("a refused token taken for a step-up")
	}
}
