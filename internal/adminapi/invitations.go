package adminapi

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/storage"
)

// Invitation is a single-use sign-up link (config signup: invite).
type Invitation struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createInvitation makes an invitation: a random secret, stored only as
// its hash, spent by the one sign-up it admits.
func (a *API) createInvitation(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Note string `json:"note"`
	}
	if r.ContentLength != 0 {
		if err := readJSON(r, &in); err != nil && err != io.EOF {
			return err
		}
	}
	secret := rand.Text() + rand.Text() // 260 random bits
	now := a.Now()
	ttl := a.InviteTTL
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	inv := storage.AccountToken{Hash: storage.Hash(secret), Kind: storage.TokenInvite, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := a.Store.CreateAccountToken(r.Context(), inv); err != nil {
		return err
	}
	a.Log.InfoContext(r.Context(), "sign-up invitation made", "expires_at", inv.ExpiresAt, "note", in.Note)
	a.changed(r, audit.Event{Type: audit.InvitationMade, Detail: "expires_at=" + inv.ExpiresAt.UTC().Format(time.RFC3339)})
	return writeJSON(w, http.StatusCreated, Invitation{URL: a.Issuer + "/signup?" + url.Values{"invite": {secret}}.Encode(), ExpiresAt: inv.ExpiresAt})
}
