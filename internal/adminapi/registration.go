package adminapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/ids"
	"github.com/bawwab/bawwab/internal/storage"
)

// Registration is the policy of dynamic client registration (RFC 7591)
// as the configuration file sets it: the mode (off, open, or token: an
// initial access token needed) and whether that token is set; never the
// token itself. LiveTokens counts the initial access tokens operators
// issued that may still register a client.
type Registration struct {
	Mode     string `json:"mode"`
	TokenSet bool   `json:"initial_access_token_set"`
	// PKCE is required, or nonce_instead (a registering confidential
	// client may ask to send a nonce instead).
	PKCE       string `json:"pkce"`
	LiveTokens int    `json:"live_tokens"`
}

func (a *API) registrationPolicy(w http.ResponseWriter, r *http.Request) error {
	p := a.Registration
	if p.Mode == "" {
		p.Mode = "off"
	}
	if p.PKCE == "" {
		p.PKCE = "required"
	}
	toks, err := a.Store.ListInitialAccessTokens(r.Context())
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.State(a.Now()) == storage.TokenLive {
			p.LiveTokens++
		}
	}
	return writeJSON(w, http.StatusOK, p)
}

// NewRegistrationToken asks for an initial access token (RFC 7591 §3).
type NewRegistrationToken struct {
	// Label says whom or what it is for.
	Label string `json:"label"`
	// ExpiresIn is its lifetime in seconds; 0 is no expiry.
	ExpiresIn int64 `json:"expires_in"`
	// MaxUses is how many clients it may register; 0 is no limit.
	MaxUses int `json:"max_uses"`
}

// RegistrationToken is an initial access token as listed: never the
// token, which only the answer of its creation carries (Token).
type RegistrationToken struct {
	ID        string     `json:"id"`
	Token     string     `json:"token,omitempty"`
	Label     string     `json:"label"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	MaxUses   int        `json:"max_uses"`
	Uses      int        `json:"uses"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// State is live, expired, used_up or revoked.
	State string `json:"state"`
}

// Limits of a new initial access token.
const (
	maxTokenLabel    = 200
	maxTokenLifetime = 10 * 365 * 24 * time.Hour
	maxTokenUses     = 1_000_000
)

func orNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func tokenView(t storage.InitialAccessToken, now time.Time) RegistrationToken {
	return RegistrationToken{ID: t.ID, Label: t.Label, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: orNil(t.ExpiresAt),
		MaxUses: t.MaxUses, Uses: t.Uses, RevokedAt: orNil(t.RevokedAt), State: t.State(now)}
}

func (in NewRegistrationToken) check() error {
	switch {
	case !storage.ValidText(in.Label) || len(in.Label) > maxTokenLabel:
		return badRequest("label must be text of at most 200 bytes")
	case in.ExpiresIn < 0 || time.Duration(in.ExpiresIn) > maxTokenLifetime/time.Second:
		return badRequest("expires_in must be 0 (no expiry) or a number of seconds up to ten years")
	case in.MaxUses < 0 || in.MaxUses > maxTokenUses:
		return badRequest("max_uses must be 0 (no limit) or a number up to 1000000")
	}
	return nil
}

// createRegistrationToken issues an initial access token; the answer
// carries the token this once: only its hash is stored.
func (a *API) createRegistrationToken(w http.ResponseWriter, r *http.Request) error {
	var in NewRegistrationToken
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	now := a.Now().Truncate(time.Second)
	secret := ids.NewOpaque() + ids.NewOpaque()
	t := storage.InitialAccessToken{ID: ids.New(), Hash: storage.Hash(secret), Label: in.Label, CreatedBy: operatorName(r),
		CreatedAt: now, MaxUses: in.MaxUses}
	if in.ExpiresIn > 0 {
		t.ExpiresAt = now.Add(time.Duration(in.ExpiresIn) * time.Second)
	}
	if err := a.Store.CreateInitialAccessToken(r.Context(), t); err != nil {
		return err
	}
	a.Audit.Record(r.Context(), audit.Event{Type: audit.RegistrationTokenIssued, Detail: operator(r) + "; initial_access_token=" + t.ID})
	v := tokenView(t, now)
	v.Token = secret
	return writeJSON(w, http.StatusCreated, v)
}

func (a *API) listRegistrationTokens(w http.ResponseWriter, r *http.Request) error {
	toks, err := a.Store.ListInitialAccessTokens(r.Context())
	now := a.Now()
	return listJSON(w, toks, err, func(t storage.InitialAccessToken) RegistrationToken { return tokenView(t, now) })
}

// revokeRegistrationToken revokes an initial access token: no client
// registers with it from now on; those it registered stay.
func (a *API) revokeRegistrationToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	notFound := &apiError{http.StatusNotFound, "not_found", "no such initial access token"}
	if !storage.ValidText(id) {
		return notFound
	}
	if err := a.Store.RevokeInitialAccessToken(r.Context(), id, a.Now()); errors.Is(err, storage.ErrNotFound) {
		return notFound
	} else if err != nil {
		return err
	}
	a.Audit.Record(r.Context(), audit.Event{Type: audit.RegistrationTokenRevoked, Detail: operator(r) + "; initial_access_token=" + id})
	return noContent(w, nil)
}
