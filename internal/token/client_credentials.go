package token

import (
	"context"
	"slices"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
)

// ClientCredentials is the client_credentials grant (RFC 6749 §4.4): a
// confidential client gets an access token for itself. No refresh token is
// issued (§4.4.3) and the token's sub is the client id (RFC 9068 §2.2).
type ClientCredentials struct {
	Issuer *Issuer
}

// Type implements Grant.
func (ClientCredentials) Type() string { return "client_credentials" }

// Exchange implements Grant.
func (g ClientCredentials) Exchange(ctx context.Context, req *Request) (*Response, error) {
	form, client := req.Form, req.Client
	if client.Public {
		return nil, oautherr.New(oautherr.UnauthorizedClient, "public clients cannot use client_credentials")
	}
	asked, err := requestedScopes(form)
	if err != nil {
		return nil, err
	}
	for _, s := range asked {
		if s == scope.OpenID || s == scope.OfflineAccess {
			return nil, oautherr.Newf(oautherr.InvalidScope, "scope %s needs a user and cannot be used with client_credentials", s)
		}
		if !slices.Contains(client.Scopes, s) {
			return nil, oautherr.Newf(oautherr.InvalidScope, "this client may not ask for scope %s", oautherr.Clip(s))
		}
	}
	resp, err := g.Issuer.respond(req, issue{subject: client.ID, scopes: asked})
	if err == nil {
		g.Issuer.Audit.Record(ctx, audit.Event{Type: audit.TokenIssued, ClientID: client.ID, Detail: "grant_type=client_credentials scope=" + resp.Scope})
	}
	return resp, err
}

var _ Grant = ClientCredentials{}
