package token

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// AuthorizationCode is the authorization_code grant (RFC 6749 §4.1.3) with
// PKCE (RFC 7636 §4.5) and single-use codes: a code presented twice revokes
// every token issued with it (RFC 6749 §4.1.2, RFC 9700 §4.5).
type AuthorizationCode struct {
	Issuer *Issuer
}

// Type implements Grant.
func (AuthorizationCode) Type() string { return "authorization_code" }

// Exchange implements Grant: it redeems the code once (RFC 6749 §4.1.3),
// checks what the code is bound to, and issues the tokens.
func (g AuthorizationCode) Exchange(ctx context.Context, req *Request) (*Response, error) {
	i := g.Issuer
	code, verifier, redirectURI, err := codeParams(req)
	if err != nil {
		return nil, err
	}
	now := i.Now()
	c, user, err := g.redeem(ctx, req.Client, code, now)
	if err != nil {
		return nil, err
	}
	if err := g.checkCode(ctx, req, c, now, redirectURI, verifier); err != nil {
		return nil, err
	}
	audience, err := i.targets(req.Form)
	if err != nil {
		return nil, err
	}
	if audience, err = narrowResources(audience, c.Resources); err != nil {
		return nil, err
	}
	if user, err = usable(user, "code"); err != nil {
		return nil, err
	}
	return g.tokens(ctx, req, c, user, audience, now)
}

// codeParams reads the parameters of RFC 6749 §4.1.3: code and
// redirect_uri are required (redirect_uri because bawwab requires it at
// /authorize), and code_verifier (RFC 7636 §4.5) as the client's PKCE
// policy says.
func codeParams(req *Request) (code, verifier, redirectURI string, err error) {
	form := req.Form
	code, verifier, redirectURI = form.Get("code"), form.Get("code_verifier"), form.Get("redirect_uri")
	switch {
	case code == "":
		return "", "", "", oautherr.New(oautherr.InvalidRequest, "code is required")
	case redirectURI == "":
		return "", "", "", oautherr.New(oautherr.InvalidRequest, "redirect_uri is required and must equal the one sent to /authorize")
	}
	if err := checkVerifierForm(req.Client, verifier); err != nil {
		return "", "", "", err
	}
	return code, verifier, redirectURI, nil
}

// redeem consumes the code, atomically: a code is good once (RFC 6749
// §4.1.2). A code presented again revokes every token issued with it
// (RFC 9700 §4.5.3.1). It returns the code's user too (nil when gone),
// read with it, unchecked.
func (g AuthorizationCode) redeem(ctx context.Context, client *storage.Client, code string, now time.Time) (*storage.AuthCode, *storage.User, error) {
	i := g.Issuer
	c, user, err := i.Store.ConsumeAuthCode(ctx, storage.Hash(code), now)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil, oautherr.New(oautherr.InvalidGrant, "the authorization code is unknown or expired")
	case errors.Is(err, storage.ErrAlreadyUsed):
		if err := i.revokeGrant(ctx, c.GrantID, audit.Event{Type: audit.CodeReplay, UserID: c.UserID, ClientID: client.ID}); err != nil {
			return nil, nil, err
		}
		return nil, nil, oautherr.New(oautherr.InvalidGrant, "the authorization code was already used; the tokens issued with it are now revoked")
	case err != nil:
		return nil, nil, oautherr.Wrap(err)
	}
	return c, user, nil
}

// checkCode checks what the redeemed code c is bound to (RFC 6749
// §4.1.3): its client (a code stolen by another client revokes its
// grant), its lifetime, the redirect URI of its request, its PKCE
// challenge (RFC 7636 §4.6) and its DPoP key (RFC 9449 §10).
func (g AuthorizationCode) checkCode(ctx context.Context, req *Request, c *storage.AuthCode, now time.Time, redirectURI, verifier string) error {
	client := req.Client
	switch {
	case c.ClientID != client.ID:
		if err := g.Issuer.revokeGrant(ctx, c.GrantID, audit.Event{Type: audit.CodeWrongClient, UserID: c.UserID, ClientID: client.ID,
			Detail: "issued to " + c.ClientID}); err != nil {
			return err
		}
		return oautherr.New(oautherr.InvalidGrant, "the authorization code was issued to another client")
	case !now.Before(c.ExpiresAt):
		return oautherr.New(oautherr.InvalidGrant, "the authorization code has expired")
	case c.RedirectURI != redirectURI:
		return oautherr.New(oautherr.InvalidGrant, "redirect_uri does not match the one of the authorization request")
	}
	if err := checkVerifier(verifier, c.CodeChallenge); err != nil {
		return err
	}
	return checkCodeBinding(req, c)
}

// checkCodeBinding checks that a code bound to a DPoP key at /authorize
// or /par (dpop_jkt, RFC 9449 §10) is redeemed with a proof of that key.
func checkCodeBinding(req *Request, c *storage.AuthCode) error {
	if c.DPoPJKT != "" && !req.proves(c.DPoPJKT) {
		return oautherr.New(oautherr.InvalidGrant, "the code is bound to a DPoP key (dpop_jkt): redeem it with a proof of that key")
	}
	return nil
}

// narrowResources applies the resource indicators of the authorization
// request: the token request may narrow them, not add to them (RFC 8707
// §2.2), and without any it gets them all.
func narrowResources(audience, granted []string) ([]string, error) {
	if len(granted) == 0 {
		return audience, nil
	}
	for _, a := range audience {
		if !slices.Contains(granted, a) {
			return nil, oautherr.New(oautherr.InvalidTarget, "resource "+oautherr.Clip(a)+" was not part of the authorization request")
		}
	}
	if len(audience) == 0 {
		return granted, nil
	}
	return audience, nil
}

// tokens creates the grant of code c and answers with its tokens (RFC 6749
// §4.1.4): a refresh token when the client may refresh (§6), an ID token
// for openid (OpenID Connect Core §3.1.3.3).
func (g AuthorizationCode) tokens(ctx context.Context, req *Request, c *storage.AuthCode, user *storage.User, audience []string, now time.Time) (*Response, error) {
	i := g.Issuer
	grant := storage.Grant{ID: c.GrantID, ClientID: req.Client.ID, UserID: c.UserID, Scopes: c.Scopes, AuthTime: c.AuthTime,
		CreatedAt: now, ExpiresAt: now.Add(i.GrantTTL), Claims: c.Claims, AMR: c.AMR}
	// A replay that raced ahead of us created this grant already revoked.
	// This redemption won the code all the same, so it gets its tokens,
	// which are dead on arrival: exactly one redemption succeeds, and what
	// a leaked code issued never works.
	return i.startGrant(ctx, req, issue{subject: user.ID, user: user, scopes: c.Scopes, grant: &grant, authTime: c.AuthTime, nonce: c.Nonce,
		audience: audience}, g.Type())
}

// startGrant mints the tokens of a new grant (in.grant), then stores the
// grant, its first refresh token when the client may refresh (RFC 6749
// §6) and the event that records the issue, as one atomic change
// (storage.Storage.StartGrant): one commit, after which nothing can fail.
// A grant with its id that exists already, created revoked by a replay
// or a deletion of the user that raced ahead, is kept as it is, and the
// tokens are dead on arrival. A client deleted after it authenticated, on
// this node or another, gets nothing (errClientGone).
func (i *Issuer) startGrant(ctx context.Context, req *Request, in issue, grantType string) (*Response, error) {
	var first *storage.RefreshToken
	if slices.Contains(req.Client.GrantTypes, "refresh_token") {
		raw, t := i.successor(in.grant, in.scopes, bindingOf(req), i.Now())
		in.refresh, first = raw, &t
	}
	resp, err := i.respond(req, in)
	if err != nil {
		return nil, err
	}
	issued := audit.Event{Type: audit.TokenIssued, UserID: in.user.ID, ClientID: req.Client.ID,
		Detail: "grant_type=" + grantType + " scope=" + resp.Scope}
	switch err := i.Store.StartGrant(ctx, *in.grant, first, i.Audit.Stored(ctx, issued)...); {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errClientGone
	case err != nil:
		return nil, oautherr.Wrap(err)
	}
	i.Audit.Logged(ctx, issued)
	return resp, nil
}

// errClientGone answers a token request whose client was deleted after it
// authenticated (RFC 7592 §2.3, or an operator), on this node or another.
var errClientGone = oautherr.New(oautherr.InvalidClient, "this client was deleted")

// revokeGrant revokes the grant of a misused code or refresh token and
// records the attack. If a code's first redemption has not created the
// grant yet, it creates it revoked, so that the redemption's tokens are
// dead on arrival. A revocation the store failed is the request's error
// (503 while the store is out of reach), never the invalid_grant that
// says the tokens were revoked: the client's retry presents the same
// credential, which revokes the grant once the store is back.
func (i *Issuer) revokeGrant(ctx context.Context, grantID string, attack audit.Event) error {
	now := i.Now()
	err := i.Store.RevokeGrant(ctx, grantID, now)
	if errors.Is(err, storage.ErrNotFound) {
		err = i.Store.CreateGrant(ctx, storage.Grant{ID: grantID, CreatedAt: now, ExpiresAt: now.Add(i.GrantTTL), RevokedAt: now})
		if errors.Is(err, storage.ErrAlreadyExists) {
			err = i.Store.RevokeGrant(ctx, grantID, now)
		}
	}
	attack.Detail = strings.TrimSpace(attack.Detail + " grant_id=" + grantID + "; grant revoked")
	if err != nil {
		attack.Detail += " FAILED: " + err.Error()
	}
	i.Audit.Record(ctx, attack)
	if err != nil {
		return oautherr.Wrap(err)
	}
	return nil
}

// bindingOf is the DPoP key a refresh token issued for req is bound to:
// a public client's, proven in this request (RFC 9449 §5); confidential
// clients' refresh tokens are bound by client authentication instead.
func bindingOf(req *Request) string {
	if p := req.Proof; p != nil && req.Client.Public {
		return p.JKT
	}
	return ""
}

var _ Grant = AuthorizationCode{}

// requestedScopes parses the optional scope parameter of a token request.
func requestedScopes(form url.Values) ([]string, error) {
	s, err := scope.Parse(form.Get("scope"))
	if err != nil {
		return nil, oautherr.New(oautherr.InvalidScope, err.Error())
	}
	return s, nil
}
