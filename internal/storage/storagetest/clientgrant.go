package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// testClientGrant: StartGrant creates a grant of an existing client (a
// taken id keeps the grant there); one of a client that does not exist,
// or was deleted, is ErrNotFound and stores nothing, not even its refresh
// token or event.
func testClientGrant(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateClient(ctx, storage.Client{ID: "notes", Name: "Notes", CreatedAt: now()}), "client")
	g := storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", Scopes: []string{"openid"}, CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}
	mustNil(t, s.StartGrant(ctx, g, nil), "create")
	mustNil(t, s.StartGrant(ctx, g, nil), "create twice")
	if got, err := s.GetGrant(ctx, "g1"); err != nil || got.ClientID != "notes" || !got.RevokedAt.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}
	rt := storage.RefreshToken{Hash: storage.Hash("rt-g2"), GrantID: "g2", ClientID: "nosuch", UserID: "u1", ExpiresAt: now().Add(time.Hour)}
	ev := storage.AuditEvent{ID: "ev-g2", Time: now(), Type: "token_issued", ClientID: "nosuch", ExpiresAt: now().Add(time.Hour)}
	wantErr(t, s.StartGrant(ctx, storage.Grant{ID: "g2", ClientID: "nosuch", UserID: "u1", ExpiresAt: now().Add(time.Hour)}, &rt, ev),
		storage.ErrNotFound, "grant of no client")
	if _, err := s.GetRefreshToken(ctx, rt.Hash); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the refresh token of a refused grant was stored: %v", err)
	}
	if evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{ClientID: "nosuch"}); err != nil || len(evs) != 0 {
		t.Fatalf("the event of a refused grant was stored: %+v %v", evs, err)
	}
	mustNil(t, s.DeleteClient(ctx, "notes", now()), "delete client")
	wantErr(t, s.StartGrant(ctx, storage.Grant{ID: "g3", ClientID: "notes", UserID: "u1", ExpiresAt: now().Add(time.Hour)}, nil),
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
				err := s.StartGrant(ctx, storage.Grant{ID: fmt.Sprintf("%s-g%d", client, i), ClientID: client, UserID: "u1",
					CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}, nil)
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
