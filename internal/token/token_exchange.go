package token

import (
	"context"
	"net/url"
	"slices"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// Token exchange (RFC 8693) with resource indicators (RFC 8707): a service
// that received a user's access token trades it for a narrower one for
// the next service it calls — impersonation without an actor token,
// delegation (with an act claim) with one.
//
// Policy: the requesting client must be the subject token's client or
// one of its audiences, and so must it be the actor token's; scopes may only narrow; the audience of the new
// token is one the server issues tokens for; the new token keeps the
// subject token's grant (revoking the user's consent ends it too) and
// never outlives the subject token. No refresh token is issued. A
// DPoP-bound subject or actor token is exchanged only with a proof of its
// key, and the new token is bound to that key. Public clients may not
// exchange tokens.

// Token type identifiers (RFC 8693 §3).
const (
	TokenExchangeGrantType = "urn:ietf:params:oauth:grant-type:token-exchange"
	AccessTokenType        = "urn:ietf:params:oauth:token-type:access_token"
)

// TokenExchange is the token exchange grant.
type TokenExchange struct {
	Issuer *Issuer
}

// Type implements Grant.
func (TokenExchange) Type() string { return TokenExchangeGrantType }

// Exchange implements Grant (RFC 8693 §2.1–2.2).
func (g TokenExchange) Exchange(ctx context.Context, req *Request) (*Response, error) {
	i, client := g.Issuer, req.Client
	if err := checkExchangeParams(req); err != nil {
		return nil, err
	}
	subject, err := g.presented(ctx, req, req.Form.Get("subject_token"), "subject_token")
	if err != nil {
		return nil, err
	}
	act, actorID, err := g.actor(ctx, req, subject)
	if err != nil {
		return nil, err
	}
	scopes, err := exchangeScopes(req, subject)
	if err != nil {
		return nil, err
	}
	audience, err := i.targets(req.Form)
	if err != nil {
		return nil, err
	}
	sub := subject.Subject // client_credentials: the client itself
	if subject.GrantID != "" {
		// The user's sub as this client knows it: a pairwise client gets
		// its own value, never another client's (OpenID Connect Core §8.1).
		sub = i.Subject(client, subject.UserID)
	}
	in := issue{subject: sub, scopes: scopes, audience: audience, act: act,
		grant: &storage.Grant{ID: subject.GrantID, ExpiresAt: subject.Expiry.Time()}}
	if subject.AuthTime != 0 {
		in.authTime = time.Unix(subject.AuthTime, 0)
	}
	resp, err := i.respond(req, in)
	if err != nil {
		return nil, err
	}
	who := subject.UserID // the internal id, never a pairwise sub; empty for a client's own token
	detail := "grant_type=token-exchange scope=" + resp.Scope + " from_client=" + subject.ClientID
	if actorID != "" {
		detail += " actor=" + actorID
	}
	i.Audit.Record(ctx, audit.Event{Type: audit.TokenIssued, UserID: who, ClientID: client.ID, Detail: detail})
	resp.IssuedTokenType = AccessTokenType
	return resp, nil
}

// checkExchangeParams checks the request of RFC 8693 §2.1: an
// authenticated client (§5), a subject token, an actor token only with
// its type, and token types bawwab exchanges: its own access tokens.
func checkExchangeParams(req *Request) error {
	form := req.Form
	switch {
	case req.Client.Public:
		return oautherr.New(oautherr.UnauthorizedClient, "public clients may not exchange tokens: the exchange needs an authenticated client (RFC 8693 §5)")
	case form.Get("subject_token") == "" || form.Get("subject_token_type") == "":
		return oautherr.New(oautherr.InvalidRequest, "subject_token and subject_token_type are required")
	case form.Get("subject_token_type") != AccessTokenType:
		return oautherr.New(oautherr.InvalidRequest, "subject_token_type must be "+AccessTokenType+": bawwab exchanges its own access tokens")
	case form.Has("actor_token") != form.Has("actor_token_type"):
		return oautherr.New(oautherr.InvalidRequest, "actor_token and actor_token_type go together")
	case form.Has("actor_token_type") && form.Get("actor_token_type") != AccessTokenType:
		return oautherr.New(oautherr.InvalidRequest, "actor_token_type must be "+AccessTokenType)
	case form.Has("requested_token_type") && form.Get("requested_token_type") != AccessTokenType:
		return oautherr.New(oautherr.InvalidRequest, "only access tokens can be requested")
	}
	return nil
}

// presented validates the subject or actor token raw, sent as param: an
// active access token of this server (RFC 8693 §2.1), the client's own or
// meant for it (aud), so that a client holding a token of another party
// can neither trade it nor name that party as the one acting (§5); and,
// when DPoP-bound, exchanged with a proof of its key (RFC 9449 §6).
func (g TokenExchange) presented(ctx context.Context, req *Request, raw, param string) (*AccessClaims, error) {
	c, err := g.Issuer.ValidateAccess(ctx, raw)
	if oautherr.Code(err) == oautherr.InvalidToken {
		return nil, oautherr.New(oautherr.InvalidGrant, param+" is not an active access token of this server")
	} else if err != nil {
		return nil, err // the store: temporarily_unavailable, not a dead token
	}
	if c.ClientID != req.Client.ID && !c.Audience.Contains(req.Client.ID) {
		if param == "actor_token" {
			return nil, oautherr.New(oautherr.InvalidGrant, "this client may present as actor_token only tokens issued to it or meant for it (aud)")
		}
		return nil, oautherr.New(oautherr.InvalidGrant, "this client may exchange only tokens issued to it or meant for it (aud)")
	}
	if err := heldKey(req, c, param); err != nil {
		return nil, err
	}
	return c, nil
}

// actor is the act claim of the new token (RFC 8693 §4.1) and, for the
// audit log, who acts (a user's internal id, or the acting client). With
// an actor token it is delegation: the actor, with the subject token's
// earlier actors nested; without, impersonation, which keeps an earlier
// delegation visible.
func (g TokenExchange) actor(ctx context.Context, req *Request, subject *AccessClaims) (*Actor, string, error) {
	raw := req.Form.Get("actor_token")
	if raw == "" {
		return subject.Act, "", nil
	}
	actor, err := g.presented(ctx, req, raw, "actor_token")
	if err != nil {
		return nil, "", err
	}
	act := &Actor{Subject: actor.Subject, ClientID: actor.ClientID, Act: subject.Act}
	actorID := actor.Subject
	if actor.GrantID != "" { // a user's token: the sub this client knows the user by
		act.Subject, actorID = g.Issuer.Subject(req.Client, actor.UserID), actor.UserID
	}
	return act, actorID, nil
}

// exchangeScopes is the scope of the new token (RFC 8693 §2.1): the asked
// scopes, which may only narrow the subject token's, or all of those.
func exchangeScopes(req *Request, subject *AccessClaims) ([]string, error) {
	had, _ := scope.Parse(subject.Scope)
	scopes, err := requestedScopes(req.Form)
	if err != nil {
		return nil, err
	}
	if len(scopes) == 0 {
		scopes = had
	}
	if !scope.Subset(scopes, had) {
		return nil, oautherr.New(oautherr.InvalidScope, "an exchanged token may only narrow the subject token's scopes")
	}
	return scopes, nil
}

// heldKey checks that the request proves possession of the key a
// DPoP-bound token is bound to (RFC 9449 §6): otherwise whoever stole the
// bound token could trade it for an unbound one. The token issued then
// is bound to the same key, since respond binds it to the proof's.
func heldKey(req *Request, c *AccessClaims, param string) error {
	if c.Cnf == nil {
		return nil
	}
	if !req.proves(c.Cnf.JKT) {
		return oautherr.New(oautherr.InvalidGrant, param+" is DPoP-bound: send a DPoP proof signed by the key it is bound to (RFC 9449)")
	}
	return nil
}

// targets reads the audience and resource parameters (RFC 8693 §2.1,
// RFC 8707 §2): each must name an audience this server issues tokens for.
func (i *Issuer) targets(form url.Values) ([]string, error) {
	var out []string
	for _, t := range append(slices.Clone(form["audience"]), form["resource"]...) {
		if !slices.Contains(i.Audience, t) {
			return nil, oautherr.New(oautherr.InvalidTarget, "unknown audience or resource "+oautherr.Clip(t))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

var _ Grant = TokenExchange{}
