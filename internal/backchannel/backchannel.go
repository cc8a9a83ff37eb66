// Package backchannel tells clients that a user signed out, server to
// server (OpenID Connect Back-Channel Logout 1.0): each client the user
// had allowed, with a registered backchannel_logout_uri, receives a
// signed logout token by POST. Delivery runs in the background with a
// timeout, so that a slow client never holds up the user's sign-out.
package backchannel

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/storage"
)

// Event is the logout event of a logout token (§2.4).
const Event = "http://schemas.openid.net/event/backchannel-logout"

// Claims are the claims of a logout token.
type Claims struct {
	jwt.Claims
	Events map[string]struct{} `json:"events"`
}

// Notifier sends logout tokens.
type Notifier struct {
	Store  storage.Storage
	Keys   *jwks.Manager
	Issuer string
	HTTP   *http.Client
	Log    *slog.Logger
	Now    func() time.Time

	wg sync.WaitGroup
}

// Clients returns the clients of the user that want back-channel logout.
// Call it before deleting what links them (a user's consents).
func (n *Notifier) Clients(ctx context.Context, userID string) []storage.Client {
	if n == nil {
		return nil
	}
	consents, err := n.Store.ListConsents(ctx, userID)
	if err != nil {
		n.Log.ErrorContext(ctx, "back-channel logout: list consents", "user_id", userID, "err", err)
		return nil
	}
	var out []storage.Client
	for _, c := range consents {
		if cl, err := n.Store.GetClient(ctx, c.ClientID); err == nil && cl.BackchannelLogoutURI != "" {
			out = append(out, *cl)
		}
	}
	return out
}

// LoggedOut notifies the user's clients that the user signed out.
func (n *Notifier) LoggedOut(ctx context.Context, userID string) {
	if n == nil {
		return
	}
	n.Notify(userID, n.Clients(ctx, userID))
}

// Notify sends each client a logout token for the user, in the
// background.
func (n *Notifier) Notify(userID string, clients []storage.Client) {
	if n == nil {
		return
	}
	for _, c := range clients {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.send(userID, c); err != nil {
				n.Log.Warn("back-channel logout not delivered", "client_id", c.ID, "err", err)
			}
		}()
	}
}

// Wait waits for deliveries in flight (tests, shutdown).
func (n *Notifier) Wait() { n.wg.Wait() }

func (n *Notifier) send(userID string, c storage.Client) error {
	now := n.Now()
	tok, err := n.Keys.SignWith(jose.SignatureAlgorithm(c.IDTokenSigningAlg()), jwks.TypeLogout, Claims{ // the client's ID token alg
		Claims: jwt.Claims{Issuer: n.Issuer, Subject: userID, Audience: jwt.Audience{c.ID}, IssuedAt: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), ID: randID()},
		Events: map[string]struct{}{Event: {}},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", c.BackchannelLogoutURI, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := n.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return &statusError{resp.Status}
	}
	return nil
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "the client answered " + e.status }

func randID() string { return rand.Text() }
