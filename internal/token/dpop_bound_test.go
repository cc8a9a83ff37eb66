package token

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// boundClients adds to e a confidential client (bound) and a public one
// (boundspa) registered with dpop_bound_access_tokens (RFC 9449 §5.2).
func (e *tokenEnv) boundClients() {
	e.t.Helper()
	all := []string{"authorization_code", "refresh_token", "client_credentials", DeviceCodeGrantType, TokenExchangeGrantType}
	secret, hash := clientauth.NewSecret()
	e.secrets["bound"] = secret
	for _, c := range []storage.Client{
		{ID: "bound", SecretHash: hash, DPoPBound: true, GrantTypes: all, RedirectURIs: []string{tRedirect},
			Scopes: []string{"openid", "profile", "offline_access", "files.read"}},
		{ID: "boundspa", Public: true, DPoPBound: true, GrantTypes: []string{"authorization_code", "refresh_token", DeviceCodeGrantType},
			RedirectURIs: []string{tRedirect}, Scopes: []string{"openid", "profile", "offline_access"}},
	} {
		if err := e.store.CreateClient(context.Background(), c); err != nil {
			e.t.Fatal(err)
		}
	}
}

// boundRefresh redeems a fresh code of client with a proof of key and
// returns the refresh token it gets.
func (e *tokenEnv) boundRefresh(client string, key *dpopKey) string {
	e.t.Helper()
	code := e.code(func(c *storage.AuthCode) { c.ClientID, c.Scopes = client, []string{"openid", "offline_access"} })
	r := e.post(client, codeForm(code), key.proof(e.t, e.now))
	if r.RefreshToken == "" {
		e.t.Fatalf("no refresh token for %s: %+v", client, r)
	}
	return r.RefreshToken
}

// TestDPoPBoundClient: a client registered with dpop_bound_access_tokens
// is refused, under every grant type, a token request without a DPoP
// proof (RFC 9449 §5.2), and gets DPoP-bound tokens with one. Clients
// without the flag still may ask for Bearer tokens.
func TestDPoPBoundClient(t *testing.T) {
	e := newTokenEnv(t)
	e.boundClients()
	key := newDPoPKey(t)
	// The bound client's own user token, bound to key.
	userToken := e.post("bound", codeForm(e.code(func(c *storage.AuthCode) { c.ClientID = "bound" })), key.proof(t, e.now)).AccessToken
	if userToken == "" {
		t.Fatal("could not mint a subject token")
	}
	code := func(client string) func() url.Values {
		return func() url.Values { return codeForm(e.code(func(c *storage.AuthCode) { c.ClientID = client })) }
	}
	refresh := func(client string) func() url.Values {
		return func() url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.boundRefresh(client, key)}}
		}
	}
	device := func(client string) func() url.Values {
		return func() url.Values {
			return url.Values{"grant_type": {DeviceCodeGrantType}, "device_code": {e.device(client, deviceState{status: storage.DeviceApproved})}}
		}
	}
	credentials := func() url.Values { return url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}} }
	exchange := func() url.Values {
		return url.Values{"grant_type": {TokenExchangeGrantType}, "subject_token": {userToken}, "subject_token_type": {AccessTokenType}}
	}
	const required = "dpop_bound_access_tokens"
	tests := []struct {
		name     string
		client   string
		form     func() url.Values
		proof    bool
		wantErr  string
		wantDesc string
		wantType string
	}{
		{"authorization_code without a proof", "bound", code("bound"), false, oautherr.InvalidRequest, required, ""},
		{"authorization_code with a proof", "bound", code("bound"), true, "", "", "DPoP"},
		{"public client, authorization_code without a proof", "boundspa", code("boundspa"), false, oautherr.InvalidRequest, required, ""},
		{"public client, authorization_code with a proof", "boundspa", code("boundspa"), true, "", "", "DPoP"},
		{"refresh_token without a proof", "bound", refresh("bound"), false, oautherr.InvalidRequest, required, ""},
		{"refresh_token with a proof", "bound", refresh("bound"), true, "", "", "DPoP"},
		{"public client, refresh_token without a proof", "boundspa", refresh("boundspa"), false, oautherr.InvalidRequest, required, ""},
		{"public client, refresh_token with a proof", "boundspa", refresh("boundspa"), true, "", "", "DPoP"},
		{"client_credentials without a proof", "bound", credentials, false, oautherr.InvalidRequest, required, ""},
		{"client_credentials with a proof", "bound", credentials, true, "", "", "DPoP"},
		{"device_code without a proof", "bound", device("bound"), false, oautherr.InvalidRequest, required, ""},
		{"device_code with a proof", "bound", device("bound"), true, "", "", "DPoP"},
		{"public client, device_code without a proof", "boundspa", device("boundspa"), false, oautherr.InvalidRequest, required, ""},
		{"public client, device_code with a proof", "boundspa", device("boundspa"), true, "", "", "DPoP"},
		{"token exchange without a proof", "bound", exchange, false, oautherr.InvalidRequest, required, ""},
		{"token exchange with a proof", "bound", exchange, true, "", "", "DPoP"},
		// The bound client's DPoP token, with a proof of its key, in the
		// hands of another client.
		{"another client exchanges its token", "web", exchange, true, oautherr.InvalidGrant, "only tokens issued to it", ""},
		// The grant type check comes first: a client refused the grant
		// hears that, whatever its proof.
		{"grant type not allowed, no proof", "boundspa", credentials, false, oautherr.UnauthorizedClient, "not allowed", ""},
		// Clients without the flag are as before.
		{"unbound client without a proof", "web", credentials, false, "", "", "Bearer"},
		{"unbound client with a proof", "web", credentials, true, "", "", "DPoP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := tt.form()
			proof := ""
			if tt.proof {
				proof = key.proof(t, e.now)
			}
			r := e.post(tt.client, form, proof)
			status := 200
			if tt.wantErr != "" {
				status = 400
			}
			r.check(t, tt.wantErr, status, tt.wantDesc)
			if r.TokenType != tt.wantType {
				t.Fatalf("token_type %q, want %q", r.TokenType, tt.wantType)
			}
		})
	}
}

// TestDPoPBoundRefusalSpendsNothing: the refusal comes before the grant
// runs, so a code, a refresh token or a device code sent without a proof
// is neither spent nor its grant revoked: the client's retry with a proof
// redeems it. (Else anyone who saw a code could burn it, and a client that
// forgot its proof once would lose the user's grant.)
func TestDPoPBoundRefusalSpendsNothing(t *testing.T) {
	e := newTokenEnv(t)
	e.boundClients()
	key := newDPoPKey(t)
	tests := []struct {
		name string
		form func() url.Values
	}{
		{"authorization_code", func() url.Values { return codeForm(e.code(func(c *storage.AuthCode) { c.ClientID = "boundspa" })) }},
		{"refresh_token", func() url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.boundRefresh("boundspa", key)}}
		}},
		{"device_code", func() url.Values {
			return url.Values{"grant_type": {DeviceCodeGrantType}, "device_code": {e.device("boundspa", deviceState{status: storage.DeviceApproved})}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := tt.form()
			e.post("boundspa", form, "").check(t, oautherr.InvalidRequest, 400, "dpop_bound_access_tokens")
			r := e.post("boundspa", form, key.proof(t, e.now))
			r.check(t, "", 200, "")
			if r.TokenType != "DPoP" {
				t.Fatalf("token_type %q, want DPoP", r.TokenType)
			}
		})
	}
}

// TestDPoPBoundRefreshStaysBound: the refresh tokens of a public bound
// client are bound to the key of the code's proof (RFC 9449 §5): a proof
// of another key does not refresh them, and neither does another client.
func TestDPoPBoundRefreshStaysBound(t *testing.T) {
	e := newTokenEnv(t)
	e.boundClients()
	key, other := newDPoPKey(t), newDPoPKey(t)
	tests := []struct {
		name     string
		client   string
		key      *dpopKey
		wantErr  string
		wantDesc string
	}{
		{"proof of another key", "boundspa", other, oautherr.InvalidGrant, "bound to a DPoP key"},
		{"another client with the key", "spa", key, oautherr.InvalidGrant, "issued to another client"},
		{"its own key", "boundspa", key, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.boundRefresh("boundspa", key)}}
			r := e.post(tt.client, form, tt.key.proof(t, e.now))
			status := 200
			if tt.wantErr != "" {
				status = 400
			}
			r.check(t, tt.wantErr, status, tt.wantDesc)
		})
	}
}

func TestNeedProof(t *testing.T) {
	p := &dpop.Proof{JKT: "k"}
	tests := []struct {
		name    string
		bound   bool
		proof   bool
		wantErr bool
	}{
		{"bound, no proof", true, false, true},
		{"bound, proof", true, true, false},
		{"not bound, no proof", false, false, false},
		{"not bound, proof", false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proof := p
			if !tt.proof {
				proof = nil
			}
			err := needProof(&storage.Client{DPoPBound: tt.bound}, proof)
			if (err != nil) != tt.wantErr {
				t.Fatalf("needProof = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && oautherr.From(err).Code != oautherr.InvalidRequest {
				t.Fatalf("code %q, want invalid_request", oautherr.From(err).Code)
			}
		})
	}
}

// TestDPoPBoundConcurrentRefusals: requests without a proof racing one
// with a proof, all for the same code of a DPoP-bound client, spend
// nothing: the proved one gets the tokens, the others invalid_request,
// and no replay revokes the grant. (A refusal checked after the code was
// consumed would let whoever saw the code burn it, or revoke the tokens.)
func TestDPoPBoundConcurrentRefusals(t *testing.T) {
	const n = 8
	e := newTokenEnv(t)
	e.boundClients()
	key := newDPoPKey(t)
	grant := NewID()
	form := codeForm(e.code(func(c *storage.AuthCode) { c.ClientID, c.GrantID = "boundspa", grant }))
	form.Set("client_id", "boundspa")
	proofs := make([]string, n)
	proofs[n/2] = key.proof(t, e.now) // one of the n carries a proof
	replies := make(chan tokenReply, n)
	var wg sync.WaitGroup
	for _, proof := range proofs {
		wg.Go(func() {
			r := httptest.NewRequest("POST", tTokenURL, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if proof != "" {
				r.Header.Set("DPoP", proof)
			}
			rec := httptest.NewRecorder()
			e.mux.ServeHTTP(rec, r)
			var reply tokenReply
			_ = json.Unmarshal(rec.Body.Bytes(), &reply)
			reply.Status = rec.Code
			replies <- reply
		})
	}
	wg.Wait()
	close(replies)
	var ok, refused int
	for r := range replies {
		switch {
		case r.Status == 200 && r.TokenType == "DPoP":
			ok++
		case r.Status == 400 && r.Error == oautherr.InvalidRequest:
			refused++
		default:
			t.Fatalf("a concurrent request got %d %s: %s", r.Status, r.Error, r.ErrorDescription)
		}
	}
	if ok != 1 || refused != n-1 {
		t.Fatalf("%d got tokens and %d were refused; want 1 and %d", ok, refused, n-1)
	}
	if e.grantRevoked(grant) {
		t.Fatal("requests without a proof revoked the code's grant")
	}
}
