package dpop

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/oautherr"
)

// TestWriteError: at a protected resource, DPoP-scheme failures and every
// error of a DPoP-scheme request get a DPoP challenge with algs, 401 for
// proof errors and a fresh DPoP-Nonce when nonces are on (RFC 9449 §7.1,
// §9); other errors keep the Bearer challenge (RFC 6750 §3); a request
// without a token is offered both schemes (§7.2).
func TestWriteError(t *testing.T) {
	nonces := &Checker{Now: time.Now, Nonces: &Nonces{Key: []byte("k"), Slot: time.Minute}}
	plain := &Checker{Now: time.Now}
	tests := []struct {
		name       string
		c          *Checker
		err        error
		dpopScheme bool
		status     int
		challenges []string // prefixes, in order
		contains   string
		nonce      bool
	}{
		{"use_dpop_nonce", nonces, scheme(oautherr.New(UseNonce, "nonce")), true, 401, []string{"DPoP "}, `error="use_dpop_nonce"`, true},
		{"invalid proof", nonces, scheme(oautherr.New(InvalidProof, "bad")), true, 401, []string{"DPoP "}, `algs="ES256 ES384 RS256 PS256 EdDSA"`, true},
		{"invalid proof, no nonces", plain, scheme(oautherr.New(InvalidProof, "bad")), true, 401, []string{"DPoP "}, `error="invalid_dpop_proof"`, false},
		{"bound token as Bearer", plain, scheme(oautherr.New(oautherr.InvalidToken, "bound")), false, 401, []string{"DPoP "}, `error="invalid_token"`, false},
		{"expired token, DPoP scheme", plain, oautherr.New(oautherr.InvalidToken, "expired"), true, 401, []string{"DPoP "}, `error_description="expired"`, false},
		{"insufficient scope, DPoP scheme", plain, oautherr.New(oautherr.InsufficientScope, "scope"), true, 403, []string{"DPoP "}, `scope="openid"`, false},
		{"expired token, Bearer scheme", nonces, oautherr.New(oautherr.InvalidToken, "expired"), false, 401, []string{"Bearer "}, `error="invalid_token"`, false},
		{"no token", nonces, oautherr.ErrMissingToken, false, 401, []string{"Bearer ", "DPoP "}, "algs=", true},
		{"no token, no DPoP here", nil, oautherr.ErrMissingToken, false, 401, []string{"Bearer "}, "realm=", false},
		{"server error stays one", plain, scheme(errors.New("store down")), true, 500, []string{"DPoP "}, "server_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.c.WriteError(w, tt.err, tt.dpopScheme, "api", "openid")
			got := w.Result().Header.Values("WWW-Authenticate")
			if w.Code != tt.status || len(got) != len(tt.challenges) {
				t.Fatalf("status %d, challenges %q; want %d, %q", w.Code, got, tt.status, tt.challenges)
			}
			for i, p := range tt.challenges {
				if !strings.HasPrefix(got[i], p) {
					t.Fatalf("challenge %q, want prefix %q", got[i], p)
				}
			}
			if !strings.Contains(strings.Join(got, "|"), tt.contains) {
				t.Fatalf("challenges %q lack %q", got, tt.contains)
			}
			if n := w.Header().Get("DPoP-Nonce"); (n != "") != tt.nonce {
				t.Fatalf("DPoP-Nonce %q, want one: %v", n, tt.nonce)
			}
		})
	}
}

// TestBound: the errors of a bound token's checks are DPoP-scheme
// failures, each with its code.
func TestBound(t *testing.T) {
	c := &Checker{Replays: &MemoryReplays{}, Now: time.Now}
	req := func(proof string) *http.Request {
		r := httptest.NewRequest("GET", "https://rs.example/api", nil)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		return r
	}
	tests := []struct {
		name       string
		r          *http.Request
		jkt        string
		dpopScheme bool
		want       string // error code; "" for none
	}{
		{"unbound token", req(""), "", false, ""},
		{"unbound token with the DPoP scheme", req(""), "", true, oautherr.InvalidToken},
		{"bound token as Bearer", req(""), "jkt", false, oautherr.InvalidToken},
		{"no proof", req(""), "jkt", true, InvalidProof},
		{"not a proof", req("e30.e30.e30"), "jkt", true, InvalidProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Bound(context.Background(), tt.r, "https://rs.example/api", "tok", tt.jkt, tt.dpopScheme)
			if oautherr.Code(err) != tt.want {
				t.Fatalf("Bound = %v, want code %q", err, tt.want)
			}
			var se *schemeError
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("Bound error %v is not a DPoP-scheme failure", err)
			}
		})
	}
}
