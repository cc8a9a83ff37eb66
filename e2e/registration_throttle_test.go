package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/adminapi"
)

// TestAttackRegistrationFetchThrottled: a refused registration costs its
// initial access token no use, so the holder of a single-use token could
// make the server fetch a sector_identifier_uri without end. Refused
// registrations are throttled per token: after the budget the server
// answers 429 slow_down with Retry-After, before reading the metadata, and
// the count of fetches stops growing, for one request after another and
// for a burst at once. The token keeps its use: once the wait is over, it
// registers.
func TestAttackRegistrationFetchThrottled(t *testing.T) {
	e := start(t)
	e.Clock.Freeze()
	var fetched atomic.Int64
	sector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		_, _ = w.Write([]byte(`["https://a.example/cb"]`))
	}))
	defer sector.Close()
	// The sector lists only a.example: the second redirect URI is not in
	// it, and the registration is refused after the fetch.
	refusedMeta := map[string]any{"redirect_uris": []string{"https://a.example/cb", "https://b.example/cb"}, "subject_type": "pairwise",
		"sector_identifier_uri": sector.URL + "/s.json", "token_endpoint_auth_method": "none"}
	goodMeta := map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "subject_type": "pairwise",
		"sector_identifier_uri": sector.URL + "/s.json", "token_endpoint_auth_method": "none"}
	once := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{Label: "once", MaxUses: 1})
	post := func(tok string, meta any) (int, string, string) {
		body, _ := json.Marshal(meta)
		req, _ := http.NewRequest("POST", e.URL+"/register", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(raw)
	}

	// One after the other: refused, each after a fetch, until throttled.
	refusals := 0
	for ; refusals < 100; refusals++ {
		st, retry, body := post(once.Token, refusedMeta)
		if st == http.StatusTooManyRequests {
			if retry == "" || !bytes.Contains([]byte(body), []byte(`"slow_down"`)) {
				t.Fatalf("throttled with Retry-After %q: %s", retry, body)
			}
			break
		}
		if st != http.StatusBadRequest {
			t.Fatalf("refused registration %d: %d %s", refusals, st, body)
		}
	}
	if refusals == 0 || refusals >= 100 {
		t.Fatalf("%d refused registrations before the throttle", refusals)
	}
	n := fetched.Load()
	if n == 0 || n > int64(refusals) {
		t.Fatalf("%d fetches for %d refused registrations", n, refusals)
	}
	// Throttled: neither refused nor good metadata is fetched.
	for range 5 {
		if st, _, body := post(once.Token, refusedMeta); st != http.StatusTooManyRequests {
			t.Fatalf("while throttled: %d %s", st, body)
		}
	}
	if st, _, body := post(once.Token, goodMeta); st != http.StatusTooManyRequests {
		t.Fatalf("good metadata while throttled: %d %s", st, body)
	}
	if got := fetched.Load(); got != n {
		t.Fatalf("fetches grew from %d to %d while throttled", n, got)
	}

	// A burst with a fresh token: at most the budget gets to the fetch.
	burst := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{Label: "burst", MaxUses: 1})
	before := fetched.Load()
	var wg sync.WaitGroup
	statuses := make([]int, 3*refusals)
	for i := range statuses {
		wg.Go(func() { statuses[i], _, _ = post(burst.Token, refusedMeta) })
	}
	wg.Wait()
	throttled := 0
	for i, st := range statuses {
		switch st {
		case http.StatusTooManyRequests:
			throttled++
		case http.StatusBadRequest:
		default:
			t.Fatalf("burst request %d: %d", i, st)
		}
	}
	if got := fetched.Load() - before; got > int64(refusals) || throttled < len(statuses)-refusals {
		t.Fatalf("a burst of %d: %d fetches, %d throttled; want at most %d fetches", len(statuses), got, throttled, refusals)
	}

	// The refusals cost no use: after the wait the single-use token
	// registers, and then is spent.
	e.Clock.Advance(time.Hour)
	if st, _, body := post(once.Token, goodMeta); st != http.StatusCreated {
		t.Fatalf("the single-use token after the wait: %d %s", st, body)
	}
	if st, _, body := post(once.Token, goodMeta); st != http.StatusUnauthorized {
		t.Fatalf("the single-use token once spent: %d %s", st, body)
	}
}
