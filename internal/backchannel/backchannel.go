// Package backchannel tells clients that a user signed out, server to
// server (OpenID Connect Back-Channel Logout 1.0): each client the user
// had allowed, with a registered backchannel_logout_uri, receives a
// signed logout token by POST. Delivery runs in the background with a
// timeout, so that a slow client never holds up the user's sign-out.
package backchannel

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/outbound"
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
	// Fetch delivers the tokens: it refuses internal addresses and
	// redirects and caps time; nil delivers nothing.
	Fetch *outbound.Client
	// Subject is the sub the client knows the user by: for a pairwise
	// client its own value (OpenID Connect Core §8.1), which its sessions
	// carry; nil sends the user id.
	Subject func(c *storage.Client, userID string) string
	Log     *slog.Logger
	Now     func() time.Time

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

// Wait waits for the deliveries in flight, until ctx ends (shutdown
// bounds it). Call it when nothing can start a new delivery any more.
func (n *Notifier) Wait(ctx context.Context) error {
	if n == nil {
		return nil
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Notifier) send(userID string, c storage.Client) error {
	now := n.Now()
	sub := userID
	if n.Subject != nil {
		sub = n.Subject(&c, userID)
	}
	tok, err := n.Keys.SignWith(jose.SignatureAlgorithm(c.IDTokenSigningAlg()), jwks.TypeLogout, Claims{ // the client's ID token alg
		Claims: jwt.Claims{Issuer: n.Issuer, Subject: sub, Audience: jwt.Audience{c.ID}, IssuedAt: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), ID: randID()},
		Events: map[string]struct{}{Event: {}},
	})
	if err != nil {
		return err
	}
	if n.Fetch == nil {
		return errors.New("no outbound client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.Fetch.PostForm(ctx, c.ID, c.BackchannelLogoutURI, url.Values{"logout_token": {tok}})
}

func randID() string { return rand.Text() }
