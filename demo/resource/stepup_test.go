package resource

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStepUpChallenge: only the payment endpoint wants more than a token,
// a sign-in with a second factor within PaymentMaxAge, and says so as
// RFC 9470 §3 does.
func TestStepUpChallenge(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := &Server{Verifier: &Verifier{Now: func() time.Time { return now }}}
	fresh, old := now.Add(-time.Minute).Unix(), now.Add(-PaymentMaxAge-time.Second).Unix()
	tests := []struct {
		name, path, acr string
		authTime        int64
		want            string // a part of the challenge; "" for none
	}{
		{"profile with a password", "/api/profile", "urn:bawwab:acr:password", fresh, ""},
		{"payment with a password", "/api/payment", "urn:bawwab:acr:password", fresh, `acr_values="urn:bawwab:acr:mfa"`},
		{"payment without acr", "/api/payment", "", fresh, `error="insufficient_user_authentication"`},
		{"payment with mfa", "/api/payment", ACRMFA, fresh, ""},
		{"payment with an old mfa sign-in", "/api/payment", ACRMFA, old, `max_age=900`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.stepUp(tt.path, &Claims{ACR: tt.acr, AuthTime: tt.authTime})
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("challenge %q, want one with %q", got, tt.want)
			}
		})
	}
	rec := httptest.NewRecorder()
	writeStepUp(rec, s.stepUp("/api/payment", &Claims{}), false)
	if h := rec.Header().Get("WWW-Authenticate"); rec.Code != 401 || !strings.HasPrefix(h, `Bearer realm="provider-api", error="insufficient_user_authentication"`) ||
		!strings.Contains(rec.Body.String(), `"error":"insufficient_user_authentication"`) {
		t.Errorf("answer: %d %s %s", rec.Code, h, rec.Body)
	}
	rec = httptest.NewRecorder()
	writeStepUp(rec, "x", true)
	if h := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(h, "DPoP ") {
		t.Errorf("DPoP token challenged as %s", h)
	}
}
