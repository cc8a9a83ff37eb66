// Package dpop verifies DPoP proofs (RFC 9449): a client proves that it
// holds the private key a token is bound to by signing, for each request,
// a small JWT naming the method, the URL, the time, a unique id and (at
// resource servers) the hash of the access token. It also issues the
// server nonces of §8, stateless (an HMAC of the time slot), so that every
// node accepts the nonces of every other.
package dpop

import (
	"cmp"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// Algorithms are the proof signature algorithms accepted: asymmetric only.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

// Window is how far a proof's iat may be from now.
const Window = 60 * time.Second

// Proof is a verified DPoP proof.
type Proof struct {
	JKT   string // SHA-256 thumbprint of the proof's key (RFC 7638), base64url
	JTI   string
	IAT   time.Time
	Nonce string
}

type claims struct {
	JTI   string           `json:"jti"`
	HTM   string           `json:"htm"`
	HTU   string           `json:"htu"`
	IAT   *jwt.NumericDate `json:"iat"`
	ATH   string           `json:"ath"`
	Nonce string           `json:"nonce"`
}

// verify checks a DPoP proof for a request with this method and URL (query
// and fragment ignored, RFC 9449 §4.3), its iat within window of now.
// accessToken, when not empty, must be the one the proof's ath hashes.
func verify(raw, method, target string, now time.Time, accessToken string, window time.Duration) (*Proof, error) {
	jws, h, err := parseProof(raw)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return nil, errors.New("the DPoP proof's signature does not verify with its jwk")
	}
	var c claims
	if err := jwtJSON(payload, &c); err != nil {
		return nil, errors.New("the DPoP proof's claims are malformed")
	}
	if err := c.check(method, target, now, accessToken, window); err != nil {
		return nil, err
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Proof{JKT: base64.RawURLEncoding.EncodeToString(tp), JTI: c.JTI, IAT: c.IAT.Time(), Nonce: c.Nonce}, nil
}

// parseProof parses the JOSE header of a proof (RFC 9449 §4.2–4.3): a
// JWT, so compact serialization only (no JWS JSON serialization, with its
// unprotected headers) and no unencoded payload (RFC 7797 §7); one
// signature with an asymmetric algorithm; typ dpop+jwt; and the public
// key in jwk. The signature is not checked here.
func parseProof(raw string) (*jose.JSONWebSignature, jose.Header, error) {
	jws, err := jose.ParseSignedCompact(raw, Algorithms)
	if err != nil {
		return nil, jose.Header{}, errors.New("the DPoP proof is not a compact JWS signed with an asymmetric algorithm")
	}
	if len(jws.Signatures) != 1 {
		return nil, jose.Header{}, errors.New("the DPoP proof must have one signature")
	}
	h := jws.Signatures[0].Protected
	_, b64 := h.ExtraHeaders["b64"]
	if _, crit := h.ExtraHeaders["crit"]; crit || b64 {
		return nil, h, errors.New("the DPoP proof may not carry b64 or crit headers")
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, h, errors.New("the DPoP proof's typ must be dpop+jwt")
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !h.JSONWebKey.Valid() {
		return nil, h, errors.New("the DPoP proof must carry its public key in jwk")
	}
	return jws, h, nil
}

// check checks the claims of a proof for a request with this method and
// URL (RFC 9449 §4.3 steps 8–12): a jti, htm and htu of the request, an
// iat within window of now, and at a resource the ath of accessToken.
func (c *claims) check(method, target string, now time.Time, accessToken string, window time.Duration) error {
	switch {
	case c.JTI == "":
		return errors.New("the DPoP proof needs a jti")
	case c.HTM != method:
		return fmt.Errorf("the DPoP proof is for %s, not %s", c.HTM, method)
	case !sameURL(c.HTU, target):
		return errors.New("the DPoP proof is for another URL (htu)")
	case c.IAT == nil || now.Sub(c.IAT.Time()) > window || c.IAT.Time().Sub(now) > window:
		return errors.New("the DPoP proof's iat is missing or too far from now")
	case accessToken != "" && c.ATH != Hash(accessToken):
		return errors.New("the DPoP proof's ath does not match the access token")
	}
	return nil
}

// Hash is the ath of an access token: base64url(SHA-256(token)).
func Hash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sameURL compares htu with the request URL: scheme and host without
// case, path exactly, query and fragment ignored.
func sameURL(htu, target string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(target)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) && a.EscapedPath() == b.EscapedPath()
}

// Nonces issues and checks server nonces: an HMAC of the current time slot.
type Nonces struct {
	Key  []byte
	Slot time.Duration // a nonce is good for this long, and one slot more
}

func (n *Nonces) at(slot int64) string {
	m := hmac.New(sha256.New, n.Key)
	_ = binary.Write(m, binary.BigEndian, slot)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// Current is the nonce to hand out now.
func (n *Nonces) Current(now time.Time) string { return n.at(now.UnixNano() / int64(n.Slot)) }

// Valid reports whether nonce is the current or the previous slot's.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	s := now.UnixNano() / int64(n.Slot)
	return hmac.Equal([]byte(nonce), []byte(n.at(s))) || hmac.Equal([]byte(nonce), []byte(n.at(s-1)))
}

func jwtJSON(payload []byte, out any) error { return json.Unmarshal(payload, out) }

// Replays remembers proof ids (jti) until they expire; storage.Storage is
// one, shared by nodes.
type Replays interface {
	UseOnce(ctx context.Context, key string, expiresAt time.Time) error
}

// Checker verifies the proofs of one server's requests: replay, nonce.
type Checker struct {
	Replays Replays
	// Nonces, when set, makes every proof carry a server nonce (§8).
	Nonces *Nonces
	Now    func() time.Time
	// Window is how far a proof's iat may be from now; zero means Window
	// (the package constant).
	Window time.Duration
}

// Errors of RFC 9449 §7 and §8.
const (
	InvalidProof = "invalid_dpop_proof"
	UseNonce     = "use_dpop_nonce"
)

// Check verifies the DPoP header of r as a proof for target (the URL the
// client called) and, at a resource, for accessToken. It returns nil, nil
// when r has no proof.
func (c *Checker) Check(ctx context.Context, r *http.Request, target, accessToken string) (*Proof, error) {
	vals := r.Header.Values("DPoP")
	if len(vals) == 0 {
		return nil, nil
	}
	if len(vals) > 1 {
		return nil, oautherr.New(InvalidProof, "send one DPoP header")
	}
	now := c.Now()
	window := cmp.Or(c.Window, Window)
	p, err := verify(vals[0], r.Method, target, now, accessToken, window)
	if err != nil {
		return nil, oautherr.New(InvalidProof, err.Error())
	}
	if c.Nonces != nil && !c.Nonces.Valid(p.Nonce, now) {
		return nil, oautherr.New(UseNonce, "the DPoP proof must carry the nonce of the DPoP-Nonce header")
	}
	// The jti namespace of the key, shared with the client assertions and
	// request objects it may sign.
	if err := c.Replays.UseOnce(ctx, storage.JTIKey(p.JKT, p.JTI), p.IAT.Add(2*window)); err != nil {
		if errors.Is(err, storage.ErrAlreadyUsed) {
			return nil, oautherr.New(InvalidProof, "the DPoP proof was used before (jti)")
		}
		return nil, oautherr.Wrap(err)
	}
	return p, nil
}

// SetNonce gives the client a fresh nonce, when nonces are on. c may be
// nil.
func (c *Checker) SetNonce(w http.ResponseWriter) {
	if c != nil && c.Nonces != nil {
		w.Header().Set("DPoP-Nonce", c.Nonces.Current(c.Now()))
	}
}

// AccessToken reads the access token of a resource request: "Bearer" or,
// for a DPoP-bound token, "DPoP" (RFC 9449 §7.1).
func AccessToken(r *http.Request) (tok string, dpopScheme bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, oautherr.ErrMissingToken
	}
	scheme, tok, found := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	dpopScheme = strings.EqualFold(scheme, "DPoP")
	if !found || tok == "" || (!dpopScheme && !strings.EqualFold(scheme, "Bearer")) {
		return "", false, oautherr.New(oautherr.InvalidRequest, "the Authorization header must be: Bearer <token> or DPoP <token>")
	}
	return tok, dpopScheme, nil
}

// schemeError is a failure of the DPoP authentication scheme at a
// protected resource: WriteError answers it with a DPoP challenge.
type schemeError struct{ err *oautherr.Error }

func (e *schemeError) Error() string { return e.err.Error() }
func (e *schemeError) Unwrap() error { return e.err }

func scheme(err error) error {
	e := oautherr.From(err)
	if e.Code == oautherr.ServerError || e.Code == oautherr.TemporarilyUnavailable {
		return err
	}
	return &schemeError{e}
}

// Bound checks a resource request against the token's binding (RFC 9449
// §7.1): a token bound to the key with thumbprint jkt must come with the
// DPoP scheme and a proof signed by that key, for this request and this
// token (ath). A token bound to no key (jkt empty) is a bearer token: sent
// with the DPoP scheme it is refused, since §7.1 has the resource server
// confirm that the proof's key is the one the token is bound to, and there
// is none. Its errors are DPoP-scheme failures for WriteError.
func (c *Checker) Bound(ctx context.Context, r *http.Request, target, token, jkt string, dpopScheme bool) error {
	if jkt == "" {
		if dpopScheme {
			return scheme(oautherr.New(oautherr.InvalidToken, "this token is not DPoP-bound: send it as Authorization: Bearer <token>"))
		}
		return nil
	}
	if !dpopScheme { // §7.2: a bound token is no bearer token
		return scheme(oautherr.New(oautherr.InvalidToken, "this token is DPoP-bound: send it as Authorization: DPoP <token>, with a DPoP proof of its key"))
	}
	p, err := c.Check(ctx, r, target, token)
	if err != nil {
		return scheme(err)
	}
	if p == nil {
		return scheme(oautherr.New(InvalidProof, "the request carries no DPoP proof: this token is DPoP-bound, send a DPoP header with a proof of its key"))
	}
	if p.JKT != jkt {
		return scheme(oautherr.New(oautherr.InvalidToken, "the DPoP proof is not signed by the key this token is bound to"))
	}
	return nil
}

// algs is the algs parameter of DPoP challenges (RFC 9449 §7.1).
func algs() string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return strings.Join(names, " ")
}

// WriteError writes the error of a protected-resource request (RFC 9449
// §7.1 and §9, RFC 6750 §3). A failure of the DPoP scheme (from Bound),
// or any error of a request that used the DPoP scheme, gets the DPoP
// challenge with the accepted algorithms and, when nonces are on, a fresh
// DPoP-Nonce; a proof without the right nonce is answered 401
// use_dpop_nonce, so that a client retries with the nonce (§9). Other
// errors get the Bearer challenge; a request without any token gets both
// (§7.2). c may be nil: a resource that takes no DPoP tokens.
func (c *Checker) WriteError(w http.ResponseWriter, err error, dpopScheme bool, realm, scope string) {
	e := oautherr.From(err)
	var se *schemeError
	missing := e == oautherr.ErrMissingToken
	if c == nil || (!errors.As(err, &se) && !dpopScheme && !missing) {
		oautherr.WriteBearer(w, err, realm, scope)
		return
	}
	params := fmt.Sprintf("realm=%q", realm)
	if !missing {
		params += fmt.Sprintf(", error=%q, error_description=%q", e.Code, e.Description)
	}
	if scope != "" {
		params += fmt.Sprintf(", scope=%q", scope)
	}
	h := w.Header()
	if missing {
		h.Set("WWW-Authenticate", "Bearer "+params)
		h.Add("WWW-Authenticate", fmt.Sprintf("DPoP %s, algs=%q", params, algs()))
	} else {
		h.Set("WWW-Authenticate", fmt.Sprintf("DPoP %s, algs=%q", params, algs()))
	}
	if e.Code == InvalidProof || e.Code == UseNonce {
		cp := *e
		cp.Status = http.StatusUnauthorized // at a resource, §7.1 and §9
		e = &cp
	}
	c.SetNonce(w)
	oautherr.Write(w, e, "")
}

// MemoryReplays is a Replays for a single process (the demo's API).
type MemoryReplays struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (m *MemoryReplays) UseOnce(_ context.Context, key string, expiresAt time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.seen == nil || len(m.seen) > 100_000 {
		m.seen = map[string]time.Time{}
	}
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return storage.ErrAlreadyUsed
	}
	m.seen[key] = expiresAt
	return nil
}
