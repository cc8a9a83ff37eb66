package console

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestRegisterSettles: the registration the first sign-in stores is the
// one upgrade wants, so that later sign-ins write nothing; a setting that
// locks the sign-in out is put back, and the operator's name stays.
func TestRegisterSettles(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c := &Console{Store: store, key: []byte("console key"), scopes: scope.Default()}
	if err := c.register(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := store.GetClient(ctx, ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if _, changed := c.upgrade(*cl); changed {
		t.Fatalf("the stored registration is changed again at the next sign-in: %+v", cl)
	}
	locked := *cl
	locked.Name, locked.RequirePAR, locked.Pairwise, locked.IDTokenAlg = "Ours", true, true, "ES256"
	locked.Scopes, locked.GrantTypes = []string{"profile"}, []string{"client_credentials"}
	up, changed := c.upgrade(locked)
	if !changed || up.RequirePAR || up.Pairwise || up.IDTokenAlg != "" || up.Name != "Ours" ||
		!slices.Contains(up.Scopes, "openid") || !slices.Contains(up.GrantTypes, "authorization_code") || up.SecretHash != storage.Hash(c.clientSecret()) {
		t.Fatalf("upgrade of a locked-out registration: %v %+v", changed, up)
	}
}
