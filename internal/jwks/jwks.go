// Package jwks manages bawwab's signing keys: it creates the first key,
// rotates keys, signs JWTs with the active key, verifies JWTs against every
// published key, and serves the public set at /jwks.json (RFC 7517 §5).
//
// Keys live in the store, so every node signs with and publishes the same
// keys. A node reloads the set on a timer and at once when it meets an
// unknown kid, so a rotation on one node reaches the others within the
// reload interval. A retired key stays published until every token it
// signed has expired.
package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/storage"
)

// Algorithm is the signature algorithm of access tokens unless configured
// otherwise.
const Algorithm = jose.ES256

// Algorithms are the algorithms bawwab signs with, in the order discovery
// lists them: RS256 first, which OpenID Connect Core §15.1 requires and
// §3.1.3.7 makes the default, then PS256 (same RSA key) and ES256.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

// keyAlgs are the kinds of key kept: one active of each. The RSA key,
// stored as RS256, also signs PS256.
var keyAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256}

// rsaBits is the size of the RSA key (RFC 7518 §3.3: 2048 or larger).
const rsaBits = 2048

// Supported reports whether bawwab signs with alg.
func Supported(alg string) bool {
	for _, a := range Algorithms {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// Token types, sent in the JOSE "typ" header.
const (
	TypeAccessToken = "at+jwt" // RFC 9068 §2.1
	TypeJWT         = "JWT"
	TypeLogout      = "logout+jwt" // OpenID Connect Back-Channel Logout §2.4
)

// ErrUnknownKey means a JWT names a key that is not published.
var ErrUnknownKey = errors.New("jwks: unknown signing key")

// Manager holds the current key set.
type Manager struct {
	store  storage.Storage
	log    *slog.Logger
	now    func() time.Time
	retain time.Duration

	set      atomic.Pointer[keySet]
	reloadMu sync.Mutex
	lastMiss time.Time // last reload caused by an unknown kid
}

type keySet struct {
	activeKID string                                             // the active ES256 key
	active    map[jose.SignatureAlgorithm]string                 // kid by alg
	signers   map[jose.SignatureAlgorithm]map[string]jose.Signer // by alg and typ, for the active keys
	public    jose.JSONWebKeySet
	byKID     map[string]any // public keys
	json      []byte
}

// New loads the keys from store, creating the first one if there is none.
// Retired keys stay published for retain (the longest token lifetime).
func New(ctx context.Context, store storage.Storage, log *slog.Logger, now func() time.Time, retain time.Duration) (*Manager, error) {
	m := &Manager{store: store, log: log, now: now, retain: retain}
	keys, err := store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, alg := range keyAlgs {
		if !hasActive(keys, alg) {
			if _, err := m.create(ctx, alg); err != nil {
				return nil, err
			}
		}
	}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func hasActive(keys []storage.SigningKey, alg jose.SignatureAlgorithm) bool {
	for _, k := range keys {
		if k.RetiredAt.IsZero() && k.Algorithm == string(alg) {
			return true
		}
	}
	return false
}

// create makes and stores a new key for alg (ES256: P-256; RS256: RSA,
// which signs PS256 too) and returns its kid.
func (m *Manager) create(ctx context.Context, alg jose.SignatureAlgorithm) (string, error) {
	var jwk jose.JSONWebKey
	switch alg {
	case jose.ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", err
		}
		jwk = jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
	case jose.RS256:
		priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return "", err
		}
		// No alg member: the key signs RS256 and PS256 (RFC 7517 §4.4).
		jwk = jose.JSONWebKey{Key: priv, Use: "sig"}
	default:
		return "", fmt.Errorf("jwks: no key kind for %s", alg)
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	raw, err := jwk.MarshalJSON()
	if err != nil {
		return "", err
	}
	err = m.store.CreateSigningKey(ctx, storage.SigningKey{ID: jwk.KeyID, Algorithm: string(alg), PrivateJWK: raw, CreatedAt: m.now()})
	if err != nil {
		return "", fmt.Errorf("jwks: store key: %w", err)
	}
	return jwk.KeyID, nil
}

// Rotate creates a new key of each kind (P-256 and RSA) and retires the
// others; they stay published until the tokens they signed have expired.
// It returns the new ES256 kid (see ActiveKID).
func (m *Manager) Rotate(ctx context.Context) (string, error) {
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return "", err
	}
	var kid string
	for _, alg := range keyAlgs {
		k, err := m.create(ctx, alg)
		if err != nil {
			return "", err
		}
		if alg == jose.ES256 {
			kid = k
		}
	}
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			if err := m.store.RetireSigningKey(ctx, k.ID, m.now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return "", err
			}
		}
	}
	m.log.InfoContext(ctx, "signing key rotated", "kid", kid)
	return kid, m.Reload(ctx)
}

// Reload reads the keys from the store, drops keys retired longer than the
// retention, and swaps in the new set.
func (m *Manager) Reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	set := &keySet{signers: map[jose.SignatureAlgorithm]map[string]jose.Signer{}, byKID: map[string]any{}, active: map[jose.SignatureAlgorithm]string{}}
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && m.now().Sub(k.RetiredAt) > m.retain {
			if err := m.store.DeleteSigningKey(ctx, k.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			continue
		}
		if err := set.add(k); err != nil {
			return err
		}
	}
	for _, alg := range Algorithms {
		if set.signers[alg] == nil {
			return fmt.Errorf("jwks: no active %s signing key in the store", alg)
		}
	}
	raw, err := json.Marshal(set.public)
	if err != nil {
		return err
	}
	set.json = raw
	m.set.Store(set)
	return nil
}

// add publishes the public half of stored key k (RFC 7517 §5) and, when
// it is the newest unretired key of its kind (keys come newest first),
// makes it the one that signs with each of its algorithms.
func (set *keySet) add(k storage.SigningKey) error {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(k.PrivateJWK); err != nil {
		return fmt.Errorf("jwks: key %s: %w", k.ID, err)
	}
	var algs []jose.SignatureAlgorithm
	switch priv := jwk.Key.(type) {
	case *ecdsa.PrivateKey:
		set.byKID[k.ID], algs = &priv.PublicKey, []jose.SignatureAlgorithm{jose.ES256}
	case *rsa.PrivateKey:
		set.byKID[k.ID], algs = &priv.PublicKey, []jose.SignatureAlgorithm{jose.RS256, jose.PS256}
	default:
		return fmt.Errorf("jwks: key %s is neither ECDSA nor RSA", k.ID)
	}
	set.public.Keys = append(set.public.Keys, jwk.Public())
	if !k.RetiredAt.IsZero() || set.signers[algs[0]] != nil {
		return nil // retired, or a newer key of this kind signs
	}
	if algs[0] == jose.ES256 {
		set.activeKID = k.ID
	}
	for _, alg := range algs {
		set.active[alg] = k.ID
		if err := set.addSigners(alg, k.ID, jwk.Key); err != nil {
			return err
		}
	}
	return nil
}

// addSigners makes the signers of key (kid) for alg, one per JWT type
// (typ, RFC 7515 §4.1.9), so that no kind of token passes for another.
func (set *keySet) addSigners(alg jose.SignatureAlgorithm, kid string, key any) error {
	set.signers[alg] = map[string]jose.Signer{}
	for _, typ := range []string{TypeAccessToken, TypeJWT, TypeLogout} {
		opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
		if err != nil {
			return err
		}
		set.signers[alg][typ] = s
	}
	return nil
}

// ActiveKID returns the kid of the active ES256 key.
func (m *Manager) ActiveKID() string { return m.set.Load().activeKID }

// KID returns the kid of the active key that signs with alg.
func (m *Manager) KID(alg jose.SignatureAlgorithm) string { return m.set.Load().active[alg] }

// Sign serializes claims as a JWT of type typ signed by the active ES256
// key; see SignWith.
func (m *Manager) Sign(typ string, claims ...any) (string, error) {
	return m.SignWith(Algorithm, typ, claims...)
}

// SignWith serializes claims as a JWT of type typ signed with alg by the
// active key for alg (one of Algorithms; empty means RS256, the default of
// OpenID Connect Core §3.1.3.7). Several claim values are merged into one
// object, later ones winning. One value is marshalled once and signed as
// is: no round trip through a map.
func (m *Manager) SignWith(alg jose.SignatureAlgorithm, typ string, claims ...any) (string, error) {
	if alg == "" {
		alg = jose.RS256
	}
	s, ok := m.set.Load().signers[alg][typ]
	if !ok {
		return "", fmt.Errorf("jwks: no %s signer for typ %q", alg, typ)
	}
	payload, err := marshalClaims(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func marshalClaims(claims []any) ([]byte, error) {
	if len(claims) == 1 {
		return json.Marshal(claims[0])
	}
	merged := map[string]json.RawMessage{}
	for _, c := range claims {
		raw, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("jwks: claims must be a JSON object: %w", err)
		}
		maps.Copy(merged, fields)
	}
	return json.Marshal(merged)
}

// Verify checks the signature of raw, that its typ header is typ, and
// decodes its claims into out (any number of claim structs). It does not
// check exp, iss or aud: the caller does, with jwt.Claims.Validate.
func (m *Manager) Verify(ctx context.Context, raw, typ string, out ...any) error {
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	if len(tok.Headers) != 1 {
		return errors.New("jwks: want exactly one signature")
	}
	h := tok.Headers[0]
	if got, _ := h.ExtraHeaders[jose.HeaderType].(string); got != typ {
		return fmt.Errorf("jwks: token type %q, want %q", got, typ)
	}
	key, ok := m.set.Load().byKID[h.KeyID]
	if !ok && m.reloadAllowed() {
		if err := m.Reload(ctx); err != nil {
			return err
		}
		key, ok = m.set.Load().byKID[h.KeyID]
	}
	if !ok {
		return ErrUnknownKey
	}
	if err := tok.Claims(key, out...); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	return nil
}

// reloadAllowed limits reloads caused by unknown kids to one a second, so
// forged kids cannot hammer the store. Scheduled reloads do not count: a
// key rotated on another node must be found at its first token.
func (m *Manager) reloadAllowed() bool {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	now := m.now()
	if now.Sub(m.lastMiss) < time.Second {
		return false
	}
	m.lastMiss = now
	return true
}

// Register adds GET /jwks.json to mux.
func (m *Manager) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /jwks.json", m.serve)
}

func (m *Manager) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(m.set.Load().json)
}
