package token

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// Issuer mints tokens and validates the access tokens it minted.
type Issuer struct {
	URL        string   // the issuer identifier (iss)
	Audience   []string // aud of access tokens (RFC 9068 §3)
	Keys       *jwks.Manager
	Store      storage.Storage
	Scopes     *scope.Catalog
	AccessTTL  time.Duration
	RefreshTTL time.Duration // sliding lifetime of one refresh token
	GrantTTL   time.Duration // absolute lifetime of a refresh chain
	IDTokenTTL time.Duration
	Now        func() time.Time
	Audit      *audit.Log
	// PairwiseKey derives pairwise subject identifiers; shared by nodes.
	PairwiseKey []byte
	// Leeway is the clock skew forgiven in exp, nbf and iat; zero means
	// DefaultLeeway.
	Leeway time.Duration
	// AccessTokenAlg signs access tokens (one of jwks.Algorithms); empty
	// means ES256.
	AccessTokenAlg string
	// Log receives what fails beside a request's answer (a use that could
	// not be recorded); nil means slog.Default.
	Log *slog.Logger

	verified verifiedCache
	used     usedCache
}

// UseInterval is how often a client's use of what a user granted it is
// recorded at most, per user and client: uses in between write nothing.
const UseInterval = time.Minute

// Used records that the client used what the user granted it (a refresh,
// an introspection of its token, a userinfo call), for the person to see
// on Connected apps. It writes at most once per UseInterval (one
// conditional UPDATE, storage.TouchConsent), and a node that recorded a
// use of the pair within UseInterval does not even ask the store, so that
// a resource server introspecting on every request adds no write load. A
// failure is logged and otherwise ignored: the use itself succeeded.
func (i *Issuer) Used(ctx context.Context, userID, clientID string) {
	if userID == "" {
		return // a client's own token (client_credentials)
	}
	now := i.Now()
	key := userID + "\x00" + clientID
	if !i.used.due(key, now) {
		return
	}
	if _, err := i.Store.TouchConsent(ctx, userID, clientID, now, UseInterval); err != nil {
		i.used.forget(key)
		cmp.Or(i.Log, slog.Default()).WarnContext(ctx, "could not record an app's use of its access", "client_id", clientID, "err", err)
	}
}

// usedCache remembers when this node last recorded a use of each user and
// client pair, bounded like verifiedCache.
type usedCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// due reports whether a use at now should be recorded, and if so takes
// note of it.
func (u *usedCache) due(key string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if last, ok := u.m[key]; ok && now.Sub(last) <= UseInterval && !now.Before(last) {
		return false
	}
	if u.m == nil || len(u.m) >= verifiedLimit {
		u.m = make(map[string]time.Time)
	}
	u.m[key] = now
	return true
}

// forget drops the note of a use that could not be recorded.
func (u *usedCache) forget(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, key)
}

// DefaultLeeway is the clock skew forgiven between nodes and clients when
// checking the times of a JWT (RFC 7519 §4.1.4: "some small leeway").
const DefaultLeeway = 5 * time.Second

// verifiedCache remembers the claims of access tokens whose signature was
// verified: a resource server introspects the same token on each of its
// requests, and a signature check costs far more than the rest. Only the
// signature's outcome is cached; expiry, the deny list and the grant are
// checked on every call. Keys are SHA-256 hashes of the tokens.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[32]byte]AccessClaims
}

// verifiedLimit bounds the cache; past it the cache starts over.
const verifiedLimit = 50_000

func (v *verifiedCache) get(raw string, verify func() (AccessClaims, error)) (AccessClaims, error) {
	key := sha256.Sum256([]byte(raw))
	v.mu.Lock()
	c, ok := v.m[key]
	v.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := verify()
	if err != nil {
		return c, err
	}
	v.mu.Lock()
	if v.m == nil || len(v.m) >= verifiedLimit {
		v.m = map[[32]byte]AccessClaims{}
	}
	v.m[key] = c
	v.mu.Unlock()
	return c, nil
}

// issue is what a grant asks the Issuer to mint.
type issue struct {
	client   *storage.Client
	subject  string // client id for client_credentials; for a user, respond sets the sub the client sees
	user     *storage.User
	scopes   []string
	grant    *storage.Grant // nil for client_credentials
	authTime time.Time
	nonce    string
	refresh  string // refresh token to return, if any
	// audience, when set, replaces the configured aud (RFC 8707).
	audience []string
	// act names the actor of a delegated token (RFC 8693 §4.1).
	act *Actor
	// jkt binds the access token to a DPoP key (RFC 9449).
	jkt string
}

// accessToken mints a JWT access token.
func (i *Issuer) accessToken(in issue) (string, time.Time, error) {
	now := i.Now()
	exp := now.Add(i.AccessTTL)
	c := AccessClaims{
		Claims: jwt.Claims{
			Issuer: i.URL, Subject: in.subject, Audience: jwt.Audience(i.Audience),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ID: NewID(),
		},
		ClientID: in.client.ID,
		Scope:    scope.Join(in.scopes),
		Act:      in.act,
	}
	if len(in.audience) > 0 {
		c.Audience = jwt.Audience(in.audience)
	}
	if in.jkt != "" {
		c.Cnf = &Confirmation{JKT: in.jkt}
	}
	if in.grant != nil {
		c.GrantID = in.grant.ID
		// Never outlive the grant's absolute lifetime.
		if in.grant.ExpiresAt.Before(exp) {
			exp = in.grant.ExpiresAt
		}
	}
	if !in.authTime.IsZero() {
		c.AuthTime = in.authTime.Unix()
	}
	if in.grant != nil && in.user != nil {
		c.AMR, c.ACR = amrOf(in.grant)
	}
	c.Expiry = jwt.NewNumericDate(exp)
	alg := jose.SignatureAlgorithm(i.AccessTokenAlg)
	if alg == "" {
		alg = jwks.Algorithm
	}
	raw, err := i.Keys.SignWith(alg, jwks.TypeAccessToken, c)
	return raw, exp, err
}

// respond mints the access token and, for openid requests, the ID token,
// for req's client. A request with a DPoP proof gets a DPoP-bound access
// token (RFC 9449 §5).
func (i *Issuer) respond(req *Request, in issue) (*Response, error) {
	in.client = req.Client
	if in.user != nil {
		in.subject = i.Subject(in.client, in.user.ID)
	}
	tokenType := "Bearer"
	if p := req.Proof; p != nil {
		in.jkt, tokenType = p.JKT, "DPoP"
	}
	at, exp, err := i.accessToken(in)
	if err != nil {
		return nil, oautherr.Wrap(err)
	}
	resp := &Response{AccessToken: at, TokenType: tokenType, ExpiresIn: int(exp.Sub(i.Now()).Round(time.Second).Seconds()),
		RefreshToken: in.refresh, Scope: scope.Join(in.scopes)}
	if in.user != nil && slices.Contains(in.scopes, scope.OpenID) {
		resp.IDToken, err = i.idToken(in, at)
		if err != nil {
			return nil, oautherr.Wrap(err)
		}
	}
	return resp, nil
}

// idToken mints an ID token (OpenID Connect Core §2 and §3.1.3.6).
func (i *Issuer) idToken(in issue, accessToken string) (string, error) {
	now := i.Now()
	c := IDClaims{
		Claims: jwt.Claims{Issuer: i.URL, Subject: in.subject, Audience: jwt.Audience{in.client.ID},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(i.IDTokenTTL))},
		Nonce:    in.nonce,
		AuthTime: in.authTime.Unix(),
		AZP:      in.client.ID,
	}
	c.AMR, c.ACR = amrOf(in.grant)
	alg := jose.SignatureAlgorithm(in.client.IDTokenSigningAlg()) // OpenID Connect Registration §2
	// RS256, PS256 and ES256 all hash with SHA-256 (Core §3.1.3.6).
	c.AtHash = atHash(accessToken)
	user := UserClaims(i.Scopes, in.user, in.scopes)
	maps.Copy(user, ClaimValues(in.user, releasedOf(in.grant).IDToken)) // Core §5.5
	return i.Keys.SignWith(alg, jwks.TypeJWT, c, user)
}

// UserClaims returns the claims about u that the granted scopes release
// (OpenID Connect Core §5.4), without sub. A standard claim the user has
// not set is left out, not sent empty (§5.3.2).
func UserClaims(cat *scope.Catalog, u *storage.User, scopes []string) map[string]any {
	return ClaimValues(u, cat.Claims(scopes))
}

// ClaimValues returns the named claims about u, leaving out those not set
// (OpenID Connect Core §5.1, §5.3.2).
func ClaimValues(u *storage.User, claims []string) map[string]any {
	out := map[string]any{}
	p := &u.Profile
	text := map[string]string{"given_name": p.GivenName, "family_name": p.FamilyName, "middle_name": p.MiddleName, "nickname": p.Nickname,
		"website": p.Website, "gender": p.Gender, "birthdate": p.Birthdate, "zoneinfo": p.Zoneinfo, "locale": p.Locale, "phone_number": p.PhoneNumber}
	for _, claim := range claims {
		if v, ok := text[claim]; ok {
			if v != "" {
				out[claim] = v
			}
			continue
		}
		if v, ok := claimValue(u, claim); ok {
			out[claim] = v
		}
	}
	return out
}

// claimValue is the value of one claim of OpenID Connect Core §5.1 that
// is not a plain string of the profile, and whether u has it.
func claimValue(u *storage.User, claim string) (any, bool) {
	p := &u.Profile
	switch claim {
	case "phone_number_verified":
		return p.PhoneNumberVerified, p.PhoneNumber != ""
	case "address":
		return p.Address, !p.Address.IsZero() // §5.1.1
	case "updated_at":
		return p.UpdatedAt.Unix(), !p.UpdatedAt.IsZero()
	case "name":
		return u.Name, true
	case "preferred_username":
		return u.Username, true
	case "picture":
		return u.Picture, u.Picture != ""
	case "email":
		return u.Email, true
	case "email_verified":
		return u.EmailVerified, true
	}
	return nil, false
}

// ACR is the authentication context class of a bawwab login: a password.
const ACR = "urn:bawwab:acr:password"

// ACRMFA is the authentication context class of a sign-in with more than
// one factor.
const ACRMFA = "urn:bawwab:acr:mfa"

// amrOf returns the amr and acr claims of the sign-in that started g
// (RFC 8176, OpenID Connect Core §2): a password when it recorded none.
func amrOf(g *storage.Grant) ([]string, string) {
	if g == nil || len(g.AMR) == 0 {
		return []string{"pwd"}, ACR
	}
	if slices.Contains(g.AMR, "mfa") {
		return g.AMR, ACRMFA
	}
	return g.AMR, ACR
}

// Subject is the sub a client sees for a user: the user id, or for a
// pairwise client a value of its own, the same on every node and for every
// client of one sector (OpenID Connect Core §8.1), from which the user id
// cannot be learnt.
func (i *Issuer) Subject(c *storage.Client, userID string) string {
	if !c.Pairwise {
		return userID
	}
	m := hmac.New(sha256.New, i.PairwiseKey)
	m.Write([]byte(Sector(c) + "\x00" + userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sector is the sector identifier of a client (OpenID Connect Core
// §8.1): the host of its sector_identifier_uri, verified at registration
// to list every redirect URI of the client; or else the one host of its
// redirect URIs, when they all are https on that host and every user token
// the client gets comes through them; or else its client id.
//
// A redirect host names a sector only because codes for it reach that
// host alone. A custom-scheme (com.example.app://notes.example/cb) or
// loopback redirect URI is no proof of a host, and anyone can register
// one; beside an https URI it would let a client receive codes at its own
// URI while naming another's host. The device flow (RFC 8628) and token
// exchange (RFC 8693) give user tokens through no redirect URI at all. In
// each case the host would hand one client the subject identifiers of
// another's, so the client's sector is its own id unless a verified
// sector_identifier_uri says otherwise.
func Sector(c *storage.Client) string {
	if p, err := url.Parse(c.SectorIdentifierURI); err == nil && c.SectorIdentifierURI != "" && p.Host != "" {
		return strings.ToLower(p.Host)
	}
	own := "client:" + c.ID
	if slices.Contains(c.GrantTypes, DeviceCodeGrantType) || slices.Contains(c.GrantTypes, TokenExchangeGrantType) {
		return own
	}
	host := ""
	for _, u := range c.RedirectURIs {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "https" || p.Host == "" || host != "" && strings.ToLower(p.Host) != host {
			return own
		}
		host = strings.ToLower(p.Host)
	}
	return cmp.Or(host, own)
}

// IDTokenHint reads an ID token this issuer signed, as sent back by a
// client as id_token_hint (OpenID Connect RP-Initiated Logout §2): the
// signature and issuer must be right; an expired token is fine.
func (i *Issuer) IDTokenHint(ctx context.Context, raw string) (*IDClaims, error) {
	var c IDClaims
	var other struct { // claims of the server's other kinds of JWT
		Events   any    `json:"events"`    // logout tokens
		ClientID string `json:"client_id"` // access tokens
	}
	if err := i.Keys.Verify(ctx, raw, jwks.TypeJWT, &c, &other); err != nil {
		return nil, err
	}
	switch {
	case c.Issuer != i.URL:
		return nil, errors.New("id_token_hint: issued by another server")
	case other.Events != nil || other.ClientID != "" || c.Subject == "" || len(c.Audience) == 0:
		return nil, errors.New("id_token_hint: not an ID token")
	}
	return &c, nil
}

// userOf loads the user a code, refresh token or device code was issued
// for; a user deleted or disabled since is an invalid_grant.
func (i *Issuer) userOf(ctx context.Context, id, what string) (*storage.User, error) {
	u, err := i.Store.GetUser(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		u = nil
	case err != nil:
		return nil, oautherr.Wrap(err)
	}
	return usable(u, what)
}

// usable returns u, the user of a code, grant or device code (what),
// loaded already (nil when no longer there), unless it is gone or
// disabled: invalid_grant then.
func usable(u *storage.User, what string) (*storage.User, error) {
	u, gone := active(u)
	if gone != "" {
		return nil, oautherr.Newf(oautherr.InvalidGrant, "the user of this %s %s", what, gone)
	}
	return u, nil
}

// activeUser loads the user id, or says why no token of theirs counts
// any more: gone is "no longer exists" or "is disabled".
func (i *Issuer) activeUser(ctx context.Context, id string) (u *storage.User, gone string, err error) {
	u, err = i.Store.GetUser(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		u = nil
	case err != nil:
		return nil, "", err
	}
	u, gone = active(u)
	return u, gone, nil
}

// active returns the user u, loaded already (nil when no longer there),
// or says why no token of theirs counts any more, as activeUser does.
func active(u *storage.User) (*storage.User, string) {
	switch {
	case u == nil:
		return nil, "no longer exists"
	case u.Disabled:
		return nil, "is disabled"
	}
	return u, ""
}

// ChainEnded reports whether the grant of a refresh token, read with it
// (storage.Storage.GetRefreshTokenChain), was revoked or no longer
// exists, or its user is gone or disabled, which ends every token it
// issued. A token whose client or user is not its grant's is of no chain
// the server made, and ended too.
func ChainEnded(c *storage.RefreshTokenChain) bool {
	g := c.Grant
	if g == nil || !g.RevokedAt.IsZero() || g.ClientID != c.ClientID || g.UserID != c.UserID {
		return true
	}
	u, gone := active(c.User)
	return gone != "" || u.ID != g.UserID
}

// liveGrant returns the grant with this id, or nil when it was revoked or
// no longer exists.
func (i *Issuer) liveGrant(ctx context.Context, id string) (*storage.Grant, error) {
	g, err := i.Store.GetGrant(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !g.RevokedAt.IsZero() {
		return nil, nil
	}
	return g, nil
}

// ErrInactive is returned by ValidateAccess for any token that is not
// currently valid; its description says why.
var ErrInactive = oautherr.New(oautherr.InvalidToken, "the access token is not valid")

// ValidateAccess checks a JWT access token minted by this issuer: signature,
// typ, iss, exp/nbf, the deny list, and its grant, or for a token of no
// grant its client. It does not check aud.
func (i *Issuer) ValidateAccess(ctx context.Context, raw string) (*AccessClaims, error) {
	c, err := i.verified.get(raw, func() (AccessClaims, error) {
		var c AccessClaims
		err := i.Keys.Verify(ctx, raw, jwks.TypeAccessToken, &c)
		return c, err
	})
	if errors.Is(err, storage.ErrUnavailable) {
		// Its key could not be looked up: an outage, not a bad token.
		return nil, oautherr.Wrap(err)
	} else if err != nil {
		return nil, ErrInactive.WithCause(err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: i.URL, Time: i.Now()}, cmp.Or(i.Leeway, DefaultLeeway)); err != nil {
		desc := "the access token is not valid"
		if errors.Is(err, jwt.ErrExpired) {
			desc = "the access token has expired"
		}
		return nil, oautherr.New(oautherr.InvalidToken, desc).WithCause(err)
	}
	revoked, err := i.Store.IsTokenRevoked(ctx, c.ID)
	if err != nil {
		return nil, oautherr.Wrap(err)
	}
	if revoked {
		return nil, oautherr.New(oautherr.InvalidToken, "the access token was revoked")
	}
	if c.GrantID == "" {
		if err := i.clientExists(ctx, c.ClientID); err != nil {
			return nil, err
		}
		return &c, nil
	}
	g, err := i.liveGrant(ctx, c.GrantID)
	if err != nil {
		return nil, oautherr.Wrap(err)
	}
	if g == nil {
		return nil, oautherr.New(oautherr.InvalidToken, "the access token was revoked")
	}
	u, err := i.userEnabled(ctx, g.UserID)
	if err != nil {
		return nil, err
	}
	c.UserID, c.User, c.Released = g.UserID, u, releasedOf(g)
	return &c, nil
}

// clientExists checks, when a token of no grant is used (a client's own,
// from client_credentials or exchanged from one), that its client was not
// deleted: DeleteClient revokes the grants of a client, and these tokens
// have none. The lookup is the client cache's.
func (i *Issuer) clientExists(ctx context.Context, clientID string) error {
	_, err := i.Store.GetClient(ctx, clientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return oautherr.New(oautherr.InvalidToken, "the client of the access token was deleted")
	case err != nil:
		return oautherr.Wrap(err)
	}
	return nil
}

// userEnabled checks, when a token is used, that its user still exists
// and is not disabled, and returns them: disabling a user ends its tokens
// at once, also those issued by a request that raced the disabling.
func (i *Issuer) userEnabled(ctx context.Context, userID string) (*storage.User, error) {
	u, gone, err := i.activeUser(ctx, userID)
	switch {
	case err != nil:
		return nil, oautherr.Wrap(err)
	case gone != "":
		return nil, oautherr.New(oautherr.InvalidToken, "the user of the access token "+gone)
	}
	return u, nil
}
