package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keyRefetch is how often at most an upstream's keys are read again for
// a token that no known key verifies: such tokens may come from anyone
// (the back-channel logout endpoint is open), and each must not become a
// request at the upstream.
const keyRefetch = 10 * time.Second

// maxKeys bounds the keys kept of an upstream's set, and so the
// signatures tried for a token that names no key id.
const maxKeys = 50

// keySet is an upstream's JWKS (oidc.KeySet): the keys read from jwks_uri,
// read again when a token names no known key, at most once per
// keyRefetch (a failed read counts), one read at a time.
type keySet struct {
	uri  string
	http *http.Client
	now  func() time.Time

	keys    atomic.Pointer[[]jose.JSONWebKey]
	mu      sync.Mutex // held while reading; guards read
	read    time.Time  // the last read, successful or not
	readErr error
}

// VerifySignature returns the payload of raw once a key of the upstream
// verifies its signature (the header's alg was checked by the caller
// against the upstream's algorithms).
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, logoutAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("upstream: malformed JWT: %v", err)
	}
	if cur := k.keys.Load(); cur != nil {
		if payload, ok := verifyWith(*cur, jws); ok {
			return payload, nil
		}
	}
	keys, err := k.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(keys, jws); ok {
		return payload, nil
	}
	return nil, errors.New("upstream: no key of the upstream verifies the signature")
}

// verifyWith tries the keys of the token's key id (every key when it
// names none).
func verifyWith(keys []jose.JSONWebKey, jws *jose.JSONWebSignature) ([]byte, bool) {
	kid := jws.Signatures[0].Header.KeyID
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid || !keys[i].IsPublic() {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh reads the keys unless they were read within keyRefetch, and
// returns the current ones.
func (k *keySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.read.IsZero() || k.now().Sub(k.read) >= keyRefetch {
		k.read = k.now()
		var keys []jose.JSONWebKey
		if keys, k.readErr = k.fetch(ctx); k.readErr == nil {
			k.keys.Store(&keys)
		}
	}
	if cur := k.keys.Load(); cur != nil {
		return *cur, nil
	}
	return nil, k.readErr
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.uri, nil)
	if err != nil {
		return nil, fmt.Errorf("upstream keys: %w", err)
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upstream keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upstream keys: %s answered %s", k.uri, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("upstream keys: %s: %w", k.uri, err)
	}
	return slices.Clip(set.Keys[:min(len(set.Keys), maxKeys)]), nil
}

// signingAlgs are the upstream's ID token algorithms (its metadata's
// id_token_signing_alg_values_supported) that bawwab accepts: asymmetric
// ones only; none when it lists none of those (go-oidc then expects RS256).
func signingAlgs(listed []string) []string {
	var algs []string
	for _, a := range listed {
		if slices.Contains(logoutAlgs, jose.SignatureAlgorithm(a)) {
			algs = append(algs, a)
		}
	}
	return algs
}
