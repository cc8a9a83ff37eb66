package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// fakeClients is a store of clients in memory that counts its reads. Only
// the client methods work; anything else panics on the nil Storage.
type fakeClients struct {
	storage.Storage

	mu    sync.Mutex
	m     map[string]storage.Client
	reads int
	fail  error // returned by GetClient while set
	// read, when set, is told that GetClient read the client, and GetClient
	// returns only once hold is closed.
	read chan<- struct{}
	hold <-chan struct{}
}

func newFakeClients() *fakeClients { return &fakeClients{m: map[string]storage.Client{}} }

func (f *fakeClients) GetClient(_ context.Context, id string) (*storage.Client, error) {
	f.mu.Lock()
	f.reads++
	c, ok := f.m[id]
	err, read, hold := f.fail, f.read, f.hold
	f.mu.Unlock()
	if read != nil {
		read <- struct{}{}
		<-hold
	}
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, storage.ErrNotFound
	}
	c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	return &c, nil
}

func (f *fakeClients) CreateClient(_ context.Context, c storage.Client) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[c.ID]; ok {
		return storage.ErrAlreadyExists
	}
	f.m[c.ID] = c
	return nil
}

func (f *fakeClients) UpdateClient(_ context.Context, c storage.Client) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[c.ID]; !ok {
		return storage.ErrNotFound
	}
	f.m[c.ID] = c
	return nil
}

func (f *fakeClients) DeleteClient(_ context.Context, id string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[id]; !ok {
		return storage.ErrNotFound
	}
	delete(f.m, id)
	return nil
}

func (f *fakeClients) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// TestClientCacheSteps: one cache and its store go through a sequence of
// reads and changes; after each step, a read of the client answers what
// the store holds (or the cached copy within the TTL), going to the store
// only when it must.
func TestClientCacheSteps(t *testing.T) {
	ctx := context.Background()
	const ttl = time.Minute
	now := time.Unix(1_800_000_000, 0)
	inner := newFakeClients()
	inner.m["app"] = storage.Client{ID: "app", Name: "App", RedirectURIs: []string{"https://app.example/cb"}}
	c := storage.WithClientCache(inner, ttl, func() time.Time { return now })
	unavailable := fmt.Errorf("db: %w", storage.ErrUnavailable)

	steps := []struct {
		name      string
		do        func() // before the read; nil for none
		id        string
		wantReads int // of the store, so far
		wantName  string
		wantErr   error
	}{
		{name: "miss reads the store", id: "app", wantReads: 1, wantName: "App"},
		{name: "hit is served from memory", id: "app", wantReads: 1, wantName: "App"},
		{name: "a caller's change does not reach the cache", do: func() {
			got, _ := c.GetClient(ctx, "app")
			got.Name, got.RedirectURIs[0] = "Changed", "https://evil.example/cb"
		}, id: "app", wantReads: 1, wantName: "App"},
		{name: "a change made elsewhere is not seen within the TTL", do: func() {
			inner.m["app"] = storage.Client{ID: "app", Name: "Elsewhere", RedirectURIs: []string{"https://app.example/cb"}}
			now = now.Add(ttl - time.Second)
		}, id: "app", wantReads: 1, wantName: "App"},
		{name: "expiry at the TTL reads the store", do: func() { now = now.Add(time.Second) }, id: "app", wantReads: 2, wantName: "Elsewhere"},
		{name: "update through the cache is seen at once", do: func() {
			if err := c.UpdateClient(ctx, storage.Client{ID: "app", Name: "Updated", RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
				t.Fatal(err)
			}
		}, id: "app", wantReads: 3, wantName: "Updated"},
		{name: "then cached again", id: "app", wantReads: 3, wantName: "Updated"},
		{name: "an unknown id is not cached", id: "nobody", wantReads: 4, wantErr: storage.ErrNotFound},
		{name: "nor on the second probe", id: "nobody", wantReads: 5, wantErr: storage.ErrNotFound},
		{name: "create through the cache is seen at once", do: func() {
			if err := c.CreateClient(ctx, storage.Client{ID: "nobody", Name: "Somebody", RedirectURIs: []string{"https://n.example/cb"}}); err != nil {
				t.Fatal(err)
			}
		}, id: "nobody", wantReads: 6, wantName: "Somebody"},
		{name: "an outage is not cached", do: func() {
			now = now.Add(ttl)
			inner.fail = unavailable
		}, id: "app", wantReads: 7, wantErr: storage.ErrUnavailable},
		{name: "the read after it goes to the store", do: func() { inner.fail = nil }, id: "app", wantReads: 8, wantName: "Updated"},
		{name: "delete through the cache is seen at once", do: func() {
			if err := c.DeleteClient(ctx, "app", now); err != nil {
				t.Fatal(err)
			}
		}, id: "app", wantReads: 9, wantErr: storage.ErrNotFound},
		{name: "a deleted client is not cached", id: "app", wantReads: 10, wantErr: storage.ErrNotFound},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.do != nil {
				st.do()
			}
			got, err := c.GetClient(ctx, st.id)
			switch {
			case st.wantErr != nil && !errors.Is(err, st.wantErr):
				t.Fatalf("GetClient(%s) = %+v, %v; want %v", st.id, got, err, st.wantErr)
			case st.wantErr == nil && (err != nil || got.Name != st.wantName || got.RedirectURIs[0] == "https://evil.example/cb"):
				t.Fatalf("GetClient(%s) = %+v, %v; want name %s", st.id, got, err, st.wantName)
			}
			if n := inner.readCount(); n != st.wantReads {
				t.Fatalf("the store was read %d times, want %d", n, st.wantReads)
			}
		})
	}
}

// TestClientCacheReadRacingWrite: a read that fetched a client from the
// store just before an update or a delete through the cache must not leave
// that old client cached after the write (a deleted client would
// otherwise keep authenticating on this node for up to the TTL).
func TestClientCacheReadRacingWrite(t *testing.T) {
	ctx := context.Background()
	writes := []struct {
		name     string
		write    func(storage.Storage) error
		wantName string // after the write; "" for ErrNotFound
	}{
		{"update", func(c storage.Storage) error {
			return c.UpdateClient(ctx, storage.Client{ID: "app", Name: "New", RedirectURIs: []string{"https://app.example/cb"}})
		}, "New"},
		{"delete", func(c storage.Storage) error { return c.DeleteClient(ctx, "app", time.Now()) }, ""},
	}
	for _, tt := range writes {
		t.Run(tt.name, func(t *testing.T) {
			inner := newFakeClients()
			inner.m["app"] = storage.Client{ID: "app", Name: "Old", RedirectURIs: []string{"https://app.example/cb"}}
			c := storage.WithClientCache(inner, time.Hour, time.Now)
			read, hold := make(chan struct{}), make(chan struct{})
			inner.read, inner.hold = read, hold
			done := make(chan error)
			go func() {
				got, err := c.GetClient(ctx, "app")
				if err == nil && got.Name != "Old" {
					err = fmt.Errorf("the racing read got %q, want Old", got.Name)
				}
				done <- err
			}()
			<-read // the racing read holds the old client
			inner.mu.Lock()
			inner.read, inner.hold = nil, nil
			inner.mu.Unlock()
			if err := tt.write(c); err != nil {
				t.Fatal(err)
			}
			close(hold)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got, err := c.GetClient(ctx, "app")
			switch {
			case tt.wantName == "" && !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("after the delete: %+v, %v; want ErrNotFound", got, err)
			case tt.wantName != "" && (err != nil || got.Name != tt.wantName):
				t.Fatalf("after the update: %+v, %v; want %s", got, err, tt.wantName)
			}
		})
	}
}

// TestClientCacheConcurrent: readers and writers of a few clients at once
// (run with -race); once the writers stop, every read answers what the
// store holds.
func TestClientCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	inner := newFakeClients()
	c := storage.WithClientCache(inner, time.Hour, time.Now)
	ids := []string{"a", "b", "c"}
	var writers, readers sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		writers.Go(func() {
			for i := range 200 {
				id := ids[(w+i)%len(ids)]
				cl := storage.Client{ID: id, Name: fmt.Sprintf("%s-%d-%d", id, w, i), RedirectURIs: []string{"https://x.example/cb"}}
				switch i % 3 {
				case 0:
					_ = c.CreateClient(ctx, cl)
				case 1:
					_ = c.UpdateClient(ctx, cl)
				case 2:
					_ = c.DeleteClient(ctx, id, time.Now())
				}
			}
		})
	}
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, id := range ids {
					if got, err := c.GetClient(ctx, id); err == nil {
						got.RedirectURIs[0] = "changed by a caller"
					} else if !errors.Is(err, storage.ErrNotFound) {
						t.Error(err)
					}
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	for _, id := range ids {
		want, wantErr := inner.GetClient(ctx, id)
		got, err := c.GetClient(ctx, id)
		switch {
		case wantErr != nil:
			if !errors.Is(err, wantErr) {
				t.Errorf("%s: %+v, %v; the store has none", id, got, err)
			}
		case err != nil || got.Name != want.Name || got.RedirectURIs[0] != want.RedirectURIs[0]:
			t.Errorf("%s: %+v, %v; the store has %+v", id, got, err, want)
		}
	}
}
