package tokentest

import (
	"net/http"
	"net/url"
	"testing"
)

// TestEnv: the clients it registers authenticate with their secrets and
// nobody else's, and UserTokens gets an access and a refresh token of u1
// that the issuer accepts.
func TestEnv(t *testing.T) {
	e := New(t)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}
	if status, body := e.Post("/token", "other", cc); status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("client_credentials of other: %d %v", status, body)
	}
	e.Secrets["other"] = e.Secrets["web"]
	if status, _ := e.Post("/token", "other", cc); status != http.StatusUnauthorized {
		t.Fatalf("other with web's secret: %d, want 401", status)
	}
	access, _ := e.UserTokens()
	c, err := e.Issuer.ValidateAccess(t.Context(), access)
	if err != nil || c.Subject != "u1" {
		t.Fatalf("access token of u1: %+v, %v", c, err)
	}
}
