package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// TestPasskeyLastWayIn: a person who signed up through an upstream (no
// password) and added a passkey may unlink the upstream, since the passkey
// remains, and may remove the passkey while the link remains; but not
// both. Removing the only passkey once the link is gone is refused with
// the page that says it is the only way in, and so is the loser of an
// unlink and a passkey removal made at the same moment from two tabs:
// each request's own check would see the other's way in still there.
func TestPasskeyLastWayIn(t *testing.T) {
	store := sqliteStore(t)
	testPasskeyLastWayIn(t, store)
}

// TestPasskeyLastWayInPostgres is TestPasskeyLastWayIn on PostgreSQL,
// whose READ COMMITTED transactions see another's delete only once it
// commits.
func TestPasskeyLastWayInPostgres(t *testing.T) {
	store := postgresStore(t)
	testPasskeyLastWayIn(t, store)
}

// lastWayPage is what the Security page says when a change would leave
// no way to sign in.
const lastWayPage = "it is your only way to sign in"

// upstreamOnlyPerson starts a server on store at a host name (WebAuthn
// refuses an IP address as relying party id: passkeys are offered at a
// host name only) with the fake upstream "fake", where username signs up
// through that upstream: no password, one link. It returns the server,
// the person's browser, signed in, and their user id.
func upstreamOnlyPerson(t *testing.T, store storage.Storage, username string) (*env, *browser, string) {
	t.Helper()
	op := startFakeOP(t)
	l := listen(t)
	host := fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port)
	e := startNode(t, store, l, host, &clock{}, func(cfg *config.Config) {
		cfg.Upstreams = []upstream.Config{op.Config("fake")}
	})
	e.URL = host
	b := e.browser()
	r := e.notesRequest("openid")
	p, _ := b.upstreamLogin(op, r, "fake", upstreamUser{Username: username, Email: username + "@fake.example", EmailVerified: true})
	b.finishDownstream(p, r)
	link := linkOf(t, e, "fake", "sub-"+username)
	if link == nil {
		t.Fatal("no link after the first sign-in")
	}
	return e, b, link.UserID
}

func testPasskeyLastWayIn(t *testing.T, store storage.Storage) {
	ctx := context.Background()
	e, b, userID := upstreamOnlyPerson(t, store, "keyonly")
	csrf := csrfOf(t, b.get("/account/security"))
	post := func(path string, form url.Values) (int, string) {
		form.Set("csrf_token", csrf)
		req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	unlink := func() (int, string) {
		return post("/account/security/upstream/unlink", url.Values{"upstream": {"fake"}})
	}
	removeKey := func(id string) (int, string) {
		return post("/account/security/passkeys/delete", url.Values{"id": {id}})
	}
	// The passkey is added after the session began: the session set it up
	// itself and may remove it (security.mayManage).
	addKey := func(id string) {
		t.Helper()
		if err := e.Store.CreatePasskey(ctx, storage.Passkey{ID: id, UserID: userID, Name: id, Credential: "{}", CreatedAt: e.Clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	relink := func() {
		t.Helper()
		if linked, _ := e.Store.GetUpstreamLink(ctx, "fake", "sub-keyonly"); linked == nil {
			if err := e.Store.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: "fake", Subject: "sub-keyonly", UserID: userID,
				CreatedAt: e.Clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waysIn := func() (links, keys int) {
		t.Helper()
		ls, err := e.Store.ListUpstreamLinks(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := e.Store.ListPasskeys(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ls), len(ks)
	}

	// One after the other: the unlink leaves the passkey, whose removal
	// is then refused; with a second passkey, one of the two may go.
	addKey("cred-seq")
	if st, body := unlink(); st != http.StatusSeeOther {
		t.Fatalf("unlink beside a passkey answered %d %.300s", st, body)
	}
	if st, body := removeKey("cred-seq"); st != http.StatusConflict || !strings.Contains(body, lastWayPage) {
		t.Fatalf("removing the only way in answered %d %.300s; want 409 and the page saying why", st, body)
	}
	if links, keys := waysIn(); links != 0 || keys != 1 {
		t.Fatalf("after the refused removal: %d links, %d passkeys; want the passkey kept", links, keys)
	}
	addKey("cred-seq2")
	if st, body := removeKey("cred-seq"); st != http.StatusSeeOther {
		t.Fatalf("removing one of two passkeys answered %d %.300s", st, body)
	}
	if st, _ := removeKey("cred-seq2"); st != http.StatusConflict {
		t.Fatalf("removing the last passkey answered %d; want 409", st)
	}
	if st, _ := removeKey("cred-nosuch"); st != http.StatusSeeOther {
		t.Fatalf("removing an unknown passkey answered %d; want the page as for any passkey gone", st)
	}

	// At the same moment: an unlink and the removal of the only passkey.
	// Rounds, each from one link and one passkey: the race is won or lost
	// at random, and every round must end with exactly one way in.
	if err := e.Store.DeletePasskey(ctx, userID, "cred-seq2"); err != nil {
		t.Fatal(err)
	}
	for round := range 6 {
		relink()
		id := fmt.Sprintf("cred-race%d", round)
		addKey(id)
		var wg sync.WaitGroup
		status, body := make([]int, 2), make([]string, 2)
		start := make(chan struct{})
		wg.Go(func() { <-start; status[0], body[0] = unlink() })
		wg.Go(func() { <-start; status[1], body[1] = removeKey(id) })
		close(start)
		wg.Wait()
		ok, refused := 0, 0
		for i := range status {
			switch {
			case status[i] == http.StatusSeeOther:
				ok++
			case status[i] == http.StatusConflict && strings.Contains(body[i], lastWayPage):
				refused++
			default:
				t.Fatalf("round %d: request %d answered %d %.300s", round, i, status[i], body[i])
			}
		}
		links, keys := waysIn()
		if ok != 1 || refused != 1 || links+keys != 1 {
			t.Fatalf("round %d: %d done, %d refused, %d links and %d passkeys left; want 1, 1 and one way in", round, ok, refused, links, keys)
		}
		// Start the next round from one link and one passkey.
		if keys == 1 {
			if err := e.Store.DeletePasskey(ctx, userID, id); err != nil {
				t.Fatal(err)
			}
		}
	}
}
