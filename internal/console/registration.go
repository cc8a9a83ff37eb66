package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// RegistrationPage is the policy of dynamic client registration and the
// initial access tokens operators issued (RFC 7591 §3). Created is a
// token just issued, shown this once; Error and Form a refused one, kept
// as typed.
type RegistrationPage struct {
	Policy  adminapi.Registration
	Tokens  []adminapi.RegistrationToken
	Created *adminapi.RegistrationToken
	Error   string
	Form    TokenForm
}

// TokenForm is the form that issues an initial access token.
type TokenForm struct {
	Label     string
	ExpiresIn int64  // seconds; 0 is no expiry
	MaxUses   string // as typed
}

// Lifetimes are the expiries the form offers, in seconds (0: none).
func (TokenForm) Lifetimes() []int64 { return []int64{0, 3600, 86400, 7 * 86400, 30 * 86400} }

func (c *Console) registration(w http.ResponseWriter, r *http.Request, u *storage.User) {
	c.registrationPage(w, r, u, http.StatusOK, RegistrationPage{})
}

func (c *Console) registrationPage(w http.ResponseWriter, r *http.Request, u *storage.User, status int, p RegistrationPage) {
	rm := c.remote(u)
	var err error
	if p.Policy, err = rm.Registration(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	if p.Tokens, err = rm.ListRegistrationTokens(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "registration", "console.registration", u, p)
}

// createToken issues an initial access token from the form; the API's
// refusal is shown beside the form, kept as typed.
func (c *Console) createToken(w http.ResponseWriter, r *http.Request, u *storage.User) {
	f := TokenForm{Label: strings.TrimSpace(r.PostFormValue("label")), MaxUses: strings.TrimSpace(r.PostFormValue("max_uses"))}
	in := adminapi.NewRegistrationToken{Label: f.Label}
	var err error
	if f.ExpiresIn, err = strconv.ParseInt(r.PostFormValue("expires_in"), 10, 64); err != nil || !slices.Contains(f.Lifetimes(), f.ExpiresIn) {
		c.registrationPage(w, r, u, http.StatusBadRequest, RegistrationPage{Error: ui.T(c.lang(w, r), "console.token.bad_expiry"), Form: f})
		return
	}
	in.ExpiresIn = f.ExpiresIn
	if f.MaxUses != "" {
		if in.MaxUses, err = strconv.Atoi(f.MaxUses); err != nil {
			c.registrationPage(w, r, u, http.StatusBadRequest, RegistrationPage{Error: ui.T(c.lang(w, r), "console.token.bad_uses"), Form: f})
			return
		}
	}
	created, err := c.remote(u).CreateRegistrationToken(r.Context(), in)
	var ae *adminapi.Error
	switch {
	case err == nil:
		c.registrationPage(w, r, u, http.StatusCreated, RegistrationPage{Created: &created})
	case asAPIError(err, &ae) && ae.Status < 500:
		c.registrationPage(w, r, u, ae.Status, RegistrationPage{Error: ae.Description, Form: f})
	default:
		c.fail(w, r, err)
	}
}

func (c *Console) confirmRevokeToken(w http.ResponseWriter, r *http.Request, u *storage.User) {
	toks, err := c.remote(u).ListRegistrationTokens(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(toks, func(t adminapi.RegistrationToken) bool { return t.ID == r.PathValue("id") })
	if i < 0 {
		c.message(w, r, http.StatusNotFound, "console.no_token")
		return
	}
	c.render(w, r, http.StatusOK, "revoke_token", "console.token.revoke_title", u, toks[i])
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, u *storage.User) {
	if err := c.remote(u).RevokeRegistrationToken(r.Context(), r.PathValue("id")); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/registration", "console.token_revoked")
}
