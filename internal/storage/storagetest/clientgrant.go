package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// testClientGrant: a grant of an existing client is created as by
// CreateGrant (a taken id is ErrAlreadyExists); one of a client that does
// not exist, or was deleted, is ErrNotFound and creates nothing.
func testClientGrant(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateClient(ctx, storage.Client{ID: "notes", Name: "Notes", CreatedAt: now()}), "client")
	g := storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", Scopes: []string{"openid"}, CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}
	mustNil(t, s.CreateClientGrant(ctx, g), "create")
	wantErr(t, s.CreateClientGrant(ctx, g), storage.ErrAlreadyExists, "create twice")
	if got, err := s.GetGrant(ctx, "g1"); err != nil || got.ClientID != "notes" || !got.RevokedAt.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}
	wantErr(t, s.CreateClientGrant(ctx, storage.Grant{ID: "g2", ClientID: "nosuch", UserID: "u1", ExpiresAt: now().Add(time.Hour)}),
		storage.ErrNotFound, "grant of no client")
	mustNil(t, s.DeleteClient(ctx, "notes", now()), "delete client")
	wantErr(t, s.CreateClientGrant(ctx, storage.Grant{ID: "g3", ClientID: "notes", UserID: "u1", ExpiresAt: now().Add(time.Hour)}),
		storage.ErrNotFound, "grant of a deleted client")
	for _, id := range []string{"g2", "g3"} {
		wantErr(t, getGrantErr(s, id), storage.ErrNotFound, "a refused grant was stored: "+id)
	}
	if got, err := s.GetGrant(ctx, "g1"); err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("the deleted client's grant is not revoked: %+v %v", got, err)
	}
}

func getGrantErr(s storage.Storage, id string) error {
	_, err := s.GetGrant(ctx, id)
	return err
}

// testClientGrantRace: grants of a client created while it is deleted, as
// by token requests on other nodes: each either fails with ErrNotFound or
// ends revoked; none outlives the client.
func testClientGrantRace(t *testing.T, s storage.Storage) {
	const grants, rounds = 6, 5
	for r := range rounds {
		client := fmt.Sprintf("doomed%d", r)
		mustNil(t, s.CreateClient(ctx, storage.Client{ID: client, Name: client, CreatedAt: now()}), "client")
		var wg sync.WaitGroup
		start := make(chan struct{})
		created := make([]bool, grants)
		for i := range grants {
			wg.Go(func() {
				<-start
				err := s.CreateClientGrant(ctx, storage.Grant{ID: fmt.Sprintf("%s-g%d", client, i), ClientID: client, UserID: "u1",
					CreatedAt: now(), ExpiresAt: now().Add(time.Hour)})
				switch {
				case err == nil:
					created[i] = true
				case !errors.Is(err, storage.ErrNotFound):
					t.Error(err)
				}
			})
		}
		wg.Go(func() {
			<-start
			mustNil(t, s.DeleteClient(ctx, client, now()), "delete client")
		})
		close(start)
		wg.Wait()
		for i, ok := range created {
			id := fmt.Sprintf("%s-g%d", client, i)
			g, err := s.GetGrant(ctx, id)
			switch {
			case ok && (err != nil || g.RevokedAt.IsZero()):
				t.Fatalf("round %d: grant %s of the deleted client outlives it: %+v %v", r, id, g, err)
			case !ok && !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("round %d: refused grant %s was stored: %+v %v", r, id, g, err)
			}
		}
	}
}
