package clientauth

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/storage"
)

// private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): the client signs
// a short-lived JWT with its private key; bawwab verifies it with the
// client's registered public keys (JWKS by value, or fetched from its
// jwks_uri), checks iss = sub = client_id, the audience, the expiry, and
// remembers the jti so that an assertion works once. client_secret_jwt is
// the same with an HMAC of the client's secret, which bawwab keeps sealed
// (sealer.go) for those clients alone. Which of the two applies is the
// client's registered method, never the assertion's alg header.

// AssertionType is the client_assertion_type of JWT assertions.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Method names in client metadata and discovery.
const (
	MethodPrivateKeyJWT = "private_key_jwt"
	MethodSecretJWT     = "client_secret_jwt"
)

// methodAssertion is what credentials reports for a JWT assertion; the
// client's registered method says how it is verified.
const methodAssertion = "client_assertion"

// SecretAlgorithms sign client_secret_jwt assertions.
var SecretAlgorithms = []jose.SignatureAlgorithm{jose.HS256, jose.HS384} // HS512 needs a 64-byte key; secrets have 52

// AssertionAlgorithms are the signature algorithms accepted: asymmetric
// only.
var AssertionAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

// maxAssertionLife bounds exp - now: an assertion is made for one request.
const maxAssertionLife = 10 * time.Minute

// assertionIssuer reads the unverified issuer of an assertion, to find
// the client whose keys verify it.
func assertionIssuer(raw string) (string, error) {
	tok, err := jwt.ParseSigned(raw, append(slices.Clone(AssertionAlgorithms), SecretAlgorithms...))
	if err != nil {
		return "", err
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return "", err
	}
	if c.Issuer == "" || c.Issuer != c.Subject {
		return "", errors.New("iss and sub must both be the client_id")
	}
	return c.Issuer, nil
}

// Signed is what VerifyClientJWT learnt of a JWT besides its claims.
type Signed struct {
	// Typ is the typ header in canonical form (see [Typ]); "" when absent.
	Typ string
	// Signer names the key that verified the JWT: its RFC 7638
	// thumbprint, or "client:" and the client id for a client's secret.
	// It is the jti namespace of storage.JTIKey.
	Signer string
	// Embedded reports a key or key reference in the header (jwk, jku,
	// x5c, x5u): the mark of a DPoP proof, never of an assertion.
	Embedded bool
}

// Typ returns a typ header value in canonical form: lower case, without
// the "application/" prefix that RFC 7515 §4.1.9 lets senders omit.
func Typ(h jose.Header) string {
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	typ = strings.ToLower(typ)
	return strings.TrimPrefix(typ, "application/")
}

func signedOf(h jose.Header, signer string) Signed {
	_, jku := h.ExtraHeaders["jku"]
	_, x5u := h.ExtraHeaders["x5u"]
	_, x5cErr := h.Certificates(x509.VerifyOptions{})
	x5c := !errors.Is(x5cErr, jose.ErrMissingX5cHeader)
	return Signed{Typ: Typ(h), Signer: signer, Embedded: h.JSONWebKey != nil || x5c || jku || x5u}
}

// PlainJWS refuses a JWS header with an unencoded payload ("b64": false,
// RFC 7797) or any critical extension ("crit"): a JWT's payload is always
// base64url-encoded (RFC 7797 §7 keeps the option out of JWTs), and a JWT
// whose signature covers other bytes than a JWT's would is no JWT of any
// kind bawwab takes.
func PlainJWS(h jose.Header) error {
	_, b64 := h.ExtraHeaders["b64"]
	_, crit := h.ExtraHeaders["crit"]
	if b64 || crit {
		return errors.New("not a plain JWT: b64 and crit headers are not accepted")
	}
	return nil
}

// VerifyClientJWT checks that raw is signed by one of c's registered keys
// with an asymmetric algorithm and decodes its claims into out. It checks
// no claim and no typ: callers do, each for its kind of JWT.
func (a *Authenticator) VerifyClientJWT(ctx context.Context, c *storage.Client, raw string, out ...any) (Signed, error) {
	tok, err := jwt.ParseSigned(raw, AssertionAlgorithms)
	if err != nil {
		return Signed{}, errors.New("not a JWT signed with an asymmetric algorithm")
	}
	if err := PlainJWS(tok.Headers[0]); err != nil {
		return Signed{}, err
	}
	kid := tok.Headers[0].KeyID
	keys, err := a.Keys.keys(ctx, c, kid)
	if errors.Is(err, errJWKSURI) {
		return Signed{}, err
	} else if err != nil {
		return Signed{}, fmt.Errorf("the client's keys cannot be read: %w", err)
	}
	for _, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if tok.Claims(k.Key, out...) == nil {
			tp, err := k.Thumbprint(crypto.SHA256)
			if err != nil {
				return Signed{}, err
			}
			return signedOf(tok.Headers[0], base64.RawURLEncoding.EncodeToString(tp)), nil
		}
	}
	return Signed{}, errors.New("not signed by a key of this client")
}

// Explicit types (RFC 8725 §3.11) of the JWTs a client signs or holds,
// canonical as [Typ] returns them.
const (
	// TypAssertion is the typ of client assertions that name their kind
	// (draft-ietf-oauth-rfc7523bis); RFC 7523 assertions carry no typ,
	// or "JWT".
	TypAssertion = "client-authentication+jwt"
	// TypRequestObject is the typ of request objects (RFC 9101 §10.8).
	TypRequestObject = "oauth-authz-req+jwt"
)

// foreignClaims mark a JWT of another kind than a client assertion: an ID
// token (OpenID Connect Core §2, §3.3.2.11), a logout token (Back-Channel
// Logout §2.4), a DPoP proof (RFC 9449 §4.2), a sender-constrained access
// token (RFC 9449 §6), an authorization request (RFC 9101 §4).
var foreignClaims = []string{"nonce", "at_hash", "c_hash", "s_hash", "auth_time", "sid", "events", "htm", "htu", "ath", "cnf",
	"response_type", "redirect_uri", "code_challenge", "request", "request_uri"}

// assertionKind refuses a JWT that is not a client assertion, whatever
// its signature: typed as another kind (request objects, DPoP proofs,
// access and logout tokens all are), carrying a key in its header (DPoP
// proofs do), carrying another kind's claims, or issued by this server
// (ID, access and logout tokens are: iss = issuer). issuers are the
// server's issuer identifier and endpoint URLs.
func assertionKind(s Signed, claims map[string]any, issuers []string) error {
	switch {
	case s.Typ != "" && s.Typ != "jwt" && s.Typ != TypAssertion:
		return errors.New("client_assertion has typ " + oautherr.Clip(s.Typ) + ": it is another kind of JWT, not a client assertion (RFC 8725 §3.11)")
	case s.Embedded:
		return errors.New("client_assertion carries a key in its header: it is verified with the client's registered keys only")
	}
	if iss, _ := claims["iss"].(string); slices.Contains(issuers, iss) {
		return errors.New("client_assertion is issued by this server: its tokens are not client assertions")
	}
	for _, name := range foreignClaims {
		if _, ok := claims[name]; ok {
			return errors.New("client_assertion carries the " + name + " claim: it is another kind of JWT, not a client assertion")
		}
	}
	return nil
}

// checkAssertion verifies raw as c's assertion.
func (a *Authenticator) checkAssertion(ctx context.Context, c *storage.Client, raw string) error {
	var claims jwt.Claims
	var all map[string]any
	verify := a.VerifyClientJWT
	if c.AuthMethod == MethodSecretJWT {
		verify = a.verifySecretJWT
	}
	signed, err := verify(ctx, c, raw, &claims, &all)
	if err != nil {
		return invalidClient("client_assertion is " + err.Error())
	}
	if err := assertionKind(signed, all, a.Audiences); err != nil {
		return invalidClient(err.Error())
	}
	now := a.now()
	switch {
	case claims.Issuer != c.ID || claims.Subject != c.ID:
		return invalidClient("client_assertion: iss and sub must be the client_id")
	case claims.Expiry == nil:
		return invalidClient("client_assertion: exp is required")
	case claims.Expiry.Time().Sub(now) > maxAssertionLife:
		return invalidClient("client_assertion: exp is too far ahead; make one per request, valid for minutes")
	case claims.ID == "":
		return invalidClient("client_assertion: jti is required")
	case len(claims.Audience) != 1:
		// draft-ietf-oauth-rfc7523bis §4: the server's identifier as the
		// sole audience. An assertion naming other parties too may have
		// been made for one of them (audience injection): it is not this
		// server's alone to accept.
		return invalidClient("client_assertion: aud must be a single value, this server's issuer")
	case !slices.ContainsFunc(a.Audiences, func(aud string) bool { return claims.Audience.Contains(aud) }):
		return invalidClient("client_assertion: aud must be this server's issuer or token endpoint")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: now}, cmp.Or(a.Leeway, 5*time.Second)); err != nil {
		return invalidClient("client_assertion has expired or is not valid yet")
	}
	if err := a.Store.UseOnce(ctx, storage.JTIKey(signed.Signer, claims.ID), claims.Expiry.Time().Add(time.Minute)); errors.Is(err, storage.ErrAlreadyUsed) {
		return invalidClient("client_assertion was used before (jti replay)")
	} else if err != nil {
		return oautherr.Wrap(err)
	}
	return nil
}

// verifySecretJWT checks a client_secret_jwt assertion: an HMAC with the
// client's secret.
func (a *Authenticator) verifySecretJWT(_ context.Context, c *storage.Client, raw string, out ...any) (Signed, error) {
	tok, err := jwt.ParseSigned(raw, SecretAlgorithms)
	if err != nil {
		return Signed{}, errors.New("not a JWT signed with HMAC-SHA2 (client_secret_jwt)")
	}
	if err := PlainJWS(tok.Headers[0]); err != nil {
		return Signed{}, err
	}
	if a.Sealer == nil || c.SecretSealed == "" {
		return Signed{}, errors.New("not verifiable: the client's secret is not kept")
	}
	secret, err := a.Sealer.Open(c.SecretSealed)
	if err != nil {
		return Signed{}, err
	}
	if tok.Claims([]byte(secret), out...) != nil {
		return Signed{}, errors.New("not signed with the client's secret")
	}
	return signedOf(tok.Headers[0], "client:"+c.ID), nil
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// KeySets finds the public keys of private_key_jwt clients: registered by
// value, or fetched from the client's jwks_uri through Fetch (which refuses
// internal addresses and redirects, and caps time and size), with a cache
// refreshed when a kid is unknown; a URI is fetched at most every 10
// seconds, whether the last fetch failed or not.
type KeySets struct {
	// Fetch fetches jwks_uri documents; nil fetches nothing.
	Fetch *outbound.Client

	mu    sync.Mutex
	cache map[string]cachedSet
}

type cachedSet struct {
	set     jose.JSONWebKeySet
	fetched time.Time // of set; zero when no fetch succeeded
	tried   time.Time // the last fetch, failed or not
}

const (
	jwksMaxAge = 5 * time.Minute
	jwksMinGap = 10 * time.Second
)

// errJWKSURI is all a client is told when its jwks_uri fails: the cause
// (an internal address, a refused connection, a status) is logged only,
// since it would map what the server can reach.
var errJWKSURI = errors.New("not verifiable: the keys at the client's jwks_uri could not be fetched")

// ParseKeySet parses a JWK Set of public signing keys, as registered.
func ParseKeySet(raw []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return set, fmt.Errorf("not a JWK Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return set, errors.New("the JWK Set has no keys")
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() {
			return set, errors.New("the JWK Set must hold valid public keys only")
		}
	}
	return set, nil
}

func (s *KeySets) keys(ctx context.Context, c *storage.Client, kid string) ([]jose.JSONWebKey, error) {
	if c.JWKS != "" {
		set, err := ParseKeySet([]byte(c.JWKS))
		return set.Keys, err
	}
	if c.JWKSURI == "" {
		return nil, errors.New("no jwks or jwks_uri registered")
	}
	s.mu.Lock()
	cached, ok := s.cache[c.JWKSURI]
	s.mu.Unlock()
	have := ok && !cached.fetched.IsZero()
	fresh := have && time.Since(cached.fetched) < jwksMaxAge
	known := kid == "" || len(cached.set.Key(kid)) > 0
	if fresh && known {
		return cached.set.Keys, nil
	}
	// At most one fetch per URI every jwksMinGap, failed or not: an
	// assertion naming an unknown kid, or a failing jwks_uri, must not let
	// anyone make this server send a request per token request.
	if ok && time.Since(cached.tried) < jwksMinGap {
		if have {
			return cached.set.Keys, nil
		}
		return nil, errJWKSURI
	}
	cached.tried = time.Now()
	s.store(c.JWKSURI, cached)
	set, err := s.fetch(ctx, c.ID, c.JWKSURI)
	if err != nil {
		if have { // keep serving what we had while the client's server is down
			return cached.set.Keys, nil
		}
		return nil, err
	}
	cached.set, cached.fetched = set, time.Now()
	s.store(c.JWKSURI, cached)
	return set.Keys, nil
}

func (s *KeySets) store(uri string, c cachedSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]cachedSet{}
	}
	s.cache[uri] = c
}

func (s *KeySets) fetch(ctx context.Context, clientID, uri string) (jose.JSONWebKeySet, error) {
	if s.Fetch == nil {
		return jose.JSONWebKeySet{}, errJWKSURI
	}
	raw, err := s.Fetch.Get(ctx, clientID, uri)
	if err != nil {
		return jose.JSONWebKeySet{}, errJWKSURI
	}
	set, err := ParseKeySet(raw)
	if err != nil {
		s.Fetch.Log.WarnContext(ctx, "jwks_uri document refused", "client_id", clientID, "url", uri, "err", err)
		return jose.JSONWebKeySet{}, errJWKSURI
	}
	return set, nil
}
