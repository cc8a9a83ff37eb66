package upstream

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/storage"
)

// Registry is the current set of upstreams: those of the configuration
// file (fixed, read-only to the admin API) and those an operator stored
// through the admin API, read again from the store once TTL passed, so
// that a change made on any node reaches every node's login page within
// TTL. A configured upstream wins over a stored one of the same id.
type Registry struct {
	Static []Config
	Store  storage.Storage
	// Sealer opens the stored client secrets (SecretSealer).
	Sealer *clientauth.Sealer
	// Base is bawwab's issuer URL, the base of the callbacks.
	Base string
	HTTP *http.Client
	Now  func() time.Time
	TTL  time.Duration
	// Log reports a stored upstream that cannot be read (its secret does
	// not open); it is left out.
	Log *slog.Logger

	mu     sync.Mutex
	static []*Provider
	stored map[string]storedProvider
	list   []*Provider
	at     time.Time
	warned map[string]bool
}

// storedProvider is a stored upstream's provider and the row it was made
// from: an unchanged row keeps its provider (and what discovery learnt).
type storedProvider struct {
	row storage.Upstream
	p   *Provider
}

// Providers returns every upstream, enabled or not: the configured ones
// first, then the stored ones by id.
func (r *Registry) Providers(ctx context.Context) ([]*Provider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Now()
	if r.static == nil {
		r.static = make([]*Provider, 0, len(r.Static))
		for _, c := range r.Static {
			r.static = append(r.static, NewProvider(c, r.Base, r.HTTP, r.Now))
		}
	}
	if r.list != nil && now.Sub(r.at) < r.TTL {
		return r.list, nil
	}
	if r.Store == nil {
		r.list, r.at = r.static, now
		return r.list, nil
	}
	rows, err := r.Store.ListUpstreams(ctx)
	if err != nil {
		return nil, err
	}
	// Never nil, so that an empty list is cached too.
	list, stored := append(make([]*Provider, 0, len(r.static)+len(rows)), r.static...), map[string]storedProvider{}
	for _, row := range rows {
		if sp, ok := r.provider(ctx, row); ok {
			stored[row.ID] = sp
			list = append(list, sp.p)
		}
	}
	r.list, r.stored, r.at = list, stored, now
	return list, nil
}

// provider is the provider of a stored row: the one made before while the
// row is unchanged; none for a row hidden by a configured upstream of its
// id or whose secret does not open.
func (r *Registry) provider(ctx context.Context, row storage.Upstream) (storedProvider, bool) {
	if r.isStatic(row.ID) {
		if r.Log != nil && !r.warned[row.ID] { // once per id
			r.Log.WarnContext(ctx, "an upstream of the configuration file hides one of the same id added through the admin API", "upstream", row.ID)
			if r.warned == nil {
				r.warned = map[string]bool{}
			}
			r.warned[row.ID] = true
		}
		return storedProvider{}, false // a configured upstream of the same id wins
	}
	if sp, ok := r.stored[row.ID]; ok && sp.row == row {
		return sp, true
	}
	c, err := Decode(row, r.Sealer)
	if err != nil { // one broken row must not take every sign-in down
		if r.Log != nil {
			r.Log.ErrorContext(ctx, "upstream left out", "upstream", row.ID, "err", err)
		}
		return storedProvider{}, false
	}
	return storedProvider{row: row, p: NewProvider(c, r.Base, r.HTTP, r.Now)}, true
}

func (r *Registry) isStatic(id string) bool {
	for _, c := range r.Static {
		if c.ID == id {
			return true
		}
	}
	return false
}

// Forget makes the next Providers read the store (after a change made on
// this node).
func (r *Registry) Forget() {
	r.mu.Lock()
	r.list = nil
	r.mu.Unlock()
}

// Lookup returns the upstream id, enabled or not, or nil.
func (r *Registry) Lookup(ctx context.Context, id string) (*Provider, error) {
	list, err := r.Providers(ctx)
	for _, p := range list {
		if p.ID == id {
			return p, nil
		}
	}
	return nil, err
}

// SecretSealer returns the sealer of the stored upstreams' client secrets,
// under key material of its own that every node sharing store reads.
func SecretSealer(ctx context.Context, store storage.Storage) (*clientauth.Sealer, error) {
	m, err := store.Secret(ctx, "upstream-secret-seal", []byte(rand.Text()+rand.Text()))
	if err != nil {
		return nil, err
	}
	return clientauth.NewSealer(m)
}

// Encode is the stored form of c: its settings as JSON without the secret,
// which is sealed for c's id (a sealed secret moved to another row does
// not open).
func Encode(c Config, sealer *clientauth.Sealer) (storage.Upstream, error) {
	secret := c.ClientSecret
	c.ClientSecret, c.Enabled = "", nil
	raw, err := json.Marshal(c)
	if err != nil {
		return storage.Upstream{}, err
	}
	u := storage.Upstream{ID: c.ID, Config: string(raw)}
	if secret != "" {
		u.SecretSealed = sealer.Seal(c.ID + "\x00" + secret)
	}
	return u, nil
}

// Decode is the upstream a stored row describes, its secret opened.
func Decode(u storage.Upstream, sealer *clientauth.Sealer) (Config, error) {
	var c Config
	if err := json.Unmarshal([]byte(u.Config), &c); err != nil {
		return Config{}, fmt.Errorf("upstream %s: stored settings: %w", u.ID, err)
	}
	c.ID, c.Enabled = u.ID, &u.Enabled
	if u.SecretSealed != "" {
		plain, err := sealer.Open(u.SecretSealed)
		secret, ok := strings.CutPrefix(plain, u.ID+"\x00")
		if err != nil || !ok {
			return Config{}, fmt.Errorf("upstream %s: %w", u.ID, errors.Join(errSealed, err))
		}
		c.ClientSecret = secret
	}
	return c, nil
}

var errSealed = errors.New("the sealed client secret does not open for this upstream")
