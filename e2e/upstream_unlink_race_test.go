package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// TestUpstreamUnlinkRace: a person whose only ways in are two upstream
// links (no password, no passkey) unlinks both at the same moment, from
// two tabs: exactly one unlink succeeds, the other is refused with the
// page that says it is the last way in, and one link remains. Each
// request's own check would see the other link still there.
func TestUpstreamUnlinkRace(t *testing.T) {
	store := sqliteStore(t)
	testUnlinkRace(t, store)
}

// TestUpstreamUnlinkRacePostgres is TestUpstreamUnlinkRace on PostgreSQL,
// whose READ COMMITTED transactions see another's delete only once it
// commits.
func TestUpstreamUnlinkRacePostgres(t *testing.T) {
	store := postgresStore(t)
	testUnlinkRace(t, store)
}

func testUnlinkRace(t *testing.T, store storage.Storage) {
	ctx := context.Background()
	op := startFakeOP(t)
	e := startNode(t, store, listen(t), "", &clock{}, func(cfg *config.Config) {
		cfg.Upstreams = []upstream.Config{op.Config("fake"), op.Config("fake2")}
	})
	b := e.browser()
	r := e.notesRequest("openid")
	p, _ := b.upstreamLogin(op, r, "fake", upstreamUser{Username: "twolinks", Email: "twolinks@fake.example", EmailVerified: true})
	b.finishDownstream(p, r)
	first := linkOf(t, e, "fake", "sub-twolinks")
	if first == nil {
		t.Fatal("no link after the first sign-in")
	}
	userID := first.UserID
	sec := b.get("/account/security")
	csrf := csrfOf(t, sec)

	unlink := func(id string) (int, string) {
		form := url.Values{"csrf_token": {csrf}, "upstream": {id}}
		req, _ := http.NewRequest("POST", e.URL+"/account/security/upstream/unlink", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	// Rounds, each starting from both links: the race is lost or won at
	// random, and every round must end with exactly one.
	for round := range 4 {
		for _, id := range []string{"fake", "fake2"} {
			if linked, _ := e.Store.GetUpstreamLink(ctx, id, "sub-twolinks"); linked == nil {
				if err := e.Store.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: id, Subject: "sub-twolinks", UserID: userID,
					CreatedAt: e.Clock.Now()}); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		status, body := make([]int, 2), make([]string, 2)
		start := make(chan struct{})
		for i, id := range []string{"fake", "fake2"} {
			wg.Go(func() {
				<-start
				status[i], body[i] = unlink(id)
			})
		}
		close(start)
		wg.Wait()
		ok, refused := 0, 0
		for i := range status {
			switch {
			case status[i] == http.StatusSeeOther:
				ok++
			case status[i] == http.StatusConflict && strings.Contains(body[i], "it is your only way to sign in"):
				refused++
			default:
				t.Fatalf("round %d: unlink answered %d %s", round, status[i], body[i])
			}
		}
		links, err := e.Store.ListUpstreamLinks(ctx, userID)
		if err != nil || ok != 1 || refused != 1 || len(links) != 1 {
			t.Fatalf("round %d: %d unlinked, %d refused, links left %+v (%v); want 1, 1 and one link", round, ok, refused, links, err)
		}
	}
}
