package storage

import (
	"context"
	"slices"
	"sync"
	"time"
)

// WithClientCache returns s with GetClient answered from memory for up to
// ttl: the token, introspection and revocation endpoints look a client up
// on every request, and clients change rarely. Changes made through the
// returned Storage (CreateClient, UpdateClient, DeleteClient) take effect
// at once on this node, even for a read that fetched the old client while
// the change was being made; changes made on other nodes are seen within
// ttl. Unknown ids and errors are never cached, so probing cannot fill the
// cache.
func WithClientCache(s Storage, ttl time.Duration, now func() time.Time) Storage {
	return &clientCache{Storage: s, ttl: ttl, now: now, m: map[string]cachedClient{}}
}

type clientCache struct {
	Storage
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cachedClient
	// gen counts the changes made through the cache. A read caches what it
	// fetched only if no change began or ended meanwhile: the client it
	// fetched may be the one the change replaced.
	gen uint64
}

type cachedClient struct {
	c  Client
	at time.Time
}

// clientCacheLimit bounds the cache; past it the cache starts over.
const clientCacheLimit = 10_000

func (s *clientCache) GetClient(ctx context.Context, id string) (*Client, error) {
	now := s.now()
	s.mu.Lock()
	e, ok := s.m[id]
	gen := s.gen
	s.mu.Unlock()
	if ok && now.Sub(e.at) < s.ttl {
		return cloneClient(e.c), nil
	}
	c, err := s.Storage.GetClient(ctx, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		delete(s.m, id)
		return nil, err
	case s.gen != gen:
		return c, nil // a change raced this read: do not cache what it replaced
	}
	if len(s.m) >= clientCacheLimit {
		s.m = map[string]cachedClient{}
	}
	s.m[id] = cachedClient{c: *cloneClient(*c), at: now}
	return c, nil
}

func (s *clientCache) CreateClient(ctx context.Context, c Client) error {
	s.forget(c.ID)
	defer s.forget(c.ID)
	return s.Storage.CreateClient(ctx, c)
}

func (s *clientCache) UpdateClient(ctx context.Context, c Client) error {
	s.forget(c.ID)
	defer s.forget(c.ID)
	return s.Storage.UpdateClient(ctx, c)
}

func (s *clientCache) DeleteClient(ctx context.Context, id string, at time.Time) error {
	s.forget(id)
	defer s.forget(id)
	return s.Storage.DeleteClient(ctx, id, at)
}

// forget drops id's entry and marks a change, so that reads in flight do
// not cache what they fetched. Writes call it before they start and after
// they end.
func (s *clientCache) forget(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.gen++
	s.mu.Unlock()
}

// cloneClient copies c so that callers may change what they get.
func cloneClient(c Client) *Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.Scopes = slices.Clone(c.Scopes)
	return &c
}
