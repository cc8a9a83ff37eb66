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

// Algorithm is the signature algorithm of every key bawwab makes.
const Algorithm = jose.ES256

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
	activeKID string
	signers   map[string]jose.Signer // by typ, for the active key
	public    jose.JSONWebKeySet
	byKID     map[string]*ecdsa.PublicKey
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
	if !hasActive(keys) {
		if _, err := m.create(ctx); err != nil {
			return nil, err
		}
	}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func hasActive(keys []storage.SigningKey) bool {
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			return true
		}
	}
	return false
}

// create makes and stores a new ES256 key and returns its kid.
func (m *Manager) create(ctx context.Context) (string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: string(Algorithm), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	raw, err := jwk.MarshalJSON()
	if err != nil {
		return "", err
	}
	err = m.store.CreateSigningKey(ctx, storage.SigningKey{ID: jwk.KeyID, Algorithm: string(Algorithm), PrivateJWK: raw, CreatedAt: m.now()})
	if err != nil {
		return "", fmt.Errorf("jwks: store key: %w", err)
	}
	return jwk.KeyID, nil
}

// Rotate creates a new signing key and retires the others; they stay
// published until the tokens they signed have expired. It returns the new kid.
func (m *Manager) Rotate(ctx context.Context) (string, error) {
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return "", err
	}
	kid, err := m.create(ctx)
	if err != nil {
		return "", err
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
	set := &keySet{signers: map[string]jose.Signer{}, byKID: map[string]*ecdsa.PublicKey{}}
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && m.now().Sub(k.RetiredAt) > m.retain {
			if err := m.store.DeleteSigningKey(ctx, k.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			continue
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(k.PrivateJWK); err != nil {
			return fmt.Errorf("jwks: key %s: %w", k.ID, err)
		}
		priv, ok := jwk.Key.(*ecdsa.PrivateKey)
		if !ok {
			return fmt.Errorf("jwks: key %s is not an ECDSA private key", k.ID)
		}
		pub := jwk.Public()
		set.public.Keys = append(set.public.Keys, pub)
		set.byKID[k.ID] = &priv.PublicKey
		if set.activeKID == "" && k.RetiredAt.IsZero() {
			set.activeKID = k.ID
			for _, typ := range []string{TypeAccessToken, TypeJWT, TypeLogout} {
				opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
				s, err := jose.NewSigner(jose.SigningKey{Algorithm: Algorithm, Key: jose.JSONWebKey{Key: priv, KeyID: k.ID}}, opts)
				if err != nil {
					return err
				}
				set.signers[typ] = s
			}
		}
	}
	if set.activeKID == "" {
		return errors.New("jwks: no active signing key in the store")
	}
	raw, err := json.Marshal(set.public)
	if err != nil {
		return err
	}
	set.json = raw
	m.set.Store(set)
	return nil
}

// ActiveKID returns the kid that signs new tokens.
func (m *Manager) ActiveKID() string { return m.set.Load().activeKID }

// Sign serializes claims as a JWT of type typ signed by the active key.
// Several claim values are merged into one object, later ones winning. One
// value is marshalled once and signed as is: no round trip through a map.
func (m *Manager) Sign(typ string, claims ...any) (string, error) {
	s, ok := m.set.Load().signers[typ]
	if !ok {
		return "", fmt.Errorf("jwks: no signer for typ %q", typ)
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
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{Algorithm})
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
