package token

import (
	"context"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// staleRead answers the first read of one refresh token with a copy taken
// earlier: the view of a request that read the token just before a
// concurrent request changed it.
type staleRead struct {
	storage.Storage
	hash string
	snap *storage.RefreshToken
}

func (s *staleRead) GetRefreshTokenChain(ctx context.Context, hash string) (*storage.RefreshTokenChain, error) {
	c, err := s.Storage.GetRefreshTokenChain(ctx, hash)
	if err == nil && hash == s.hash && s.snap != nil {
		c.RefreshToken, s.snap = *s.snap, nil
	}
	return c, err
}

// TestRefreshRetryRacingSuccessor: a retry of a rotated token spends its
// successor. A request presenting that successor at the same moment (it
// read the successor unused, then lost the rotation to the retry) holds a
// token the retry made stale: one of the two is a thief, as when the
// successor comes after the retry, so the grant is revoked (RFC 9700
// §4.14.2) rather than the loser told to try again.
func TestRefreshRetryRacingSuccessor(t *testing.T) {
	f := newRefreshFixture(t, "")
	g := RefreshToken{Grace: 30 * time.Second}
	ctx := context.Background()
	r1, err := f.refresh(g, f.app, f.first, "")
	if err != nil {
		t.Fatal(err)
	}
	successor := storage.Hash(r1.RefreshToken)
	snap, err := f.store.GetRefreshToken(ctx, successor)
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(5 * time.Second)
	if _, err := f.refresh(g, f.app, f.first, ""); err != nil { // the retry, within the grace
		t.Fatalf("retry: %v", err)
	}
	f.i.Store = &staleRead{Storage: f.store, hash: successor, snap: snap}
	_, err = f.refresh(g, f.app, r1.RefreshToken, "")
	if err == nil || !f.revoked(t) {
		t.Fatalf("successor racing the retry that spent it: %v, revoked %v; want reuse and the grant revoked", err, f.revoked(t))
	}
}
