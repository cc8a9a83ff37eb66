package adminapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// ---- upstream identity providers

// Upstream is an upstream as the API shows it: its settings, never its
// client secret (ClientSecretSet says whether it has one). An upstream of
// the configuration file is read-only here (Source "config").
type Upstream struct {
	upstream.Config
	Enabled         bool      `json:"enabled"`
	ClientSecretSet bool      `json:"client_secret_set"`
	Source          string    `json:"source"` // "config" or "api"
	ReadOnly        bool      `json:"read_only"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

// NewUpstream is the body of POST /admin/upstreams and PUT
// /admin/upstreams/{id}: an upstream's settings as in the configuration
// file's upstreams list. On PUT, an absent client_secret keeps the one
// stored.
type NewUpstream = upstream.Config

// Sources of an upstream.
const (
	SourceConfig = "config"
	SourceAPI    = "api"
)

func configView(c upstream.Config) Upstream {
	set, on := c.ClientSecret != "", c.On()
	c.ClientSecret, c.Enabled = "", nil
	return Upstream{Config: c, Enabled: on, ClientSecretSet: set, Source: SourceConfig, ReadOnly: true}
}

func storedView(row storage.Upstream) (Upstream, error) {
	c, err := upstream.Decode(storage.Upstream{ID: row.ID, Config: row.Config, Enabled: row.Enabled}, nil)
	if err != nil {
		return Upstream{}, err
	}
	c.Enabled = nil
	return Upstream{Config: c, Enabled: row.Enabled, ClientSecretSet: row.SecretSealed != "", Source: SourceAPI,
		CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}, nil
}

func (a *API) configured(id string) (upstream.Config, bool) {
	for _, c := range a.Upstreams {
		if c.ID == id {
			return c, true
		}
	}
	return upstream.Config{}, false
}

func readOnly(id string) error {
	return &apiError{http.StatusConflict, "read_only", "upstream " + strconv.Quote(id) +
		" is defined in the configuration file and is read-only here; change it there and restart"}
}

func (a *API) listUpstreams(w http.ResponseWriter, r *http.Request) error {
	rows, err := a.Store.ListUpstreams(r.Context())
	if err != nil {
		return err
	}
	out := make([]Upstream, 0, len(a.Upstreams)+len(rows))
	for _, c := range a.Upstreams {
		out = append(out, configView(c))
	}
	for _, row := range rows {
		if _, ok := a.configured(row.ID); ok {
			continue
		}
		v, err := storedView(row)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getUpstream(w http.ResponseWriter, r *http.Request) error {
	v, err := a.upstreamView(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (a *API) upstreamView(ctx context.Context, id string) (Upstream, error) {
	if c, ok := a.configured(id); ok {
		return configView(c), nil
	}
	row, err := a.Store.GetUpstream(ctx, id)
	if err != nil {
		return Upstream{}, err
	}
	return storedView(*row)
}

// checkUpstream validates c as the configuration file's upstreams are
// validated, and checks every URL bawwab will call as a client's: https
// (http only on a host insecure_outbound_allow lists), no internal
// address named outright.
func (a *API) checkUpstream(c upstream.Config) error {
	if err := upstream.Validate([]upstream.Config{c}); err != nil {
		return badRequest(err.Error())
	}
	rc := c.Resolved()
	for _, u := range []struct{ name, url string }{{"issuer", rc.Issuer}, {"auth_url", rc.AuthURL}, {"token_url", rc.TokenURL},
		{"userinfo_url", rc.UserinfoURL}, {"emails_url", rc.EmailsURL}} {
		if u.url == "" || (u.name != "issuer" && rc.OIDC()) {
			continue
		}
		if err := a.checkCallURL(u.url); err != nil {
			return badRequest("upstream " + strconv.Quote(c.ID) + ": " + u.name + " " + err.Error())
		}
	}
	return nil
}

func (a *API) checkCallURL(u string) error {
	if a.Outbound == nil {
		return outbound.New(outbound.Options{}).CheckURL(u)
	}
	return a.Outbound.CheckURL(u)
}

func (a *API) secretSealer(ctx context.Context) (*clientauth.Sealer, error) {
	return upstream.SecretSealer(ctx, a.Store)
}

func (a *API) createUpstream(w http.ResponseWriter, r *http.Request) error {
	var in NewUpstream
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if _, ok := a.configured(in.ID); ok {
		return &apiError{http.StatusConflict, "conflict", "upstream " + strconv.Quote(in.ID) + " is defined in the configuration file already"}
	}
	if err := a.checkUpstream(in); err != nil {
		return err
	}
	if err := a.checkOrphanLinks(r, in.ID); err != nil {
		return err
	}
	row, err := a.encodeUpstream(r.Context(), in)
	if err != nil {
		return err
	}
	row.Enabled, row.CreatedAt, row.UpdatedAt = in.On(), a.Now(), a.Now()
	if err := a.Store.CreateUpstream(r.Context(), row); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return &apiError{http.StatusConflict, "conflict", "an upstream " + strconv.Quote(in.ID) + " exists already"}
		}
		return err
	}
	a.upstreamChanged(r, audit.UpstreamAdded, in.ID)
	v, err := storedView(row)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

// checkOrphanLinks refuses a new upstream whose id has links already (an
// upstream of that id left the configuration file): they hold another
// provider's subjects, perhaps, which must not sign in to those accounts
// through this one; adopt_links=true says it is the same provider.
func (a *API) checkOrphanLinks(r *http.Request, id string) error {
	if r.URL.Query().Get("adopt_links") == "true" {
		return nil
	}
	links, err := a.Store.ListUpstreamUsers(r.Context(), id, "", 1)
	if err != nil || len(links) == 0 {
		return err
	}
	return &apiError{http.StatusConflict, "conflict", "accounts are linked to an earlier upstream " + strconv.Quote(id) +
		" (from the configuration file): choose another id, or send adopt_links=true if this is the same provider and its subjects"}
}

func (a *API) encodeUpstream(ctx context.Context, c upstream.Config) (storage.Upstream, error) {
	sealer, err := a.secretSealer(ctx)
	if err != nil {
		return storage.Upstream{}, err
	}
	return upstream.Encode(c, sealer)
}

// storedUpstream returns the stored upstream id; one of the configuration
// file is read-only.
func (a *API) storedUpstream(ctx context.Context, id string) (*storage.Upstream, error) {
	if _, ok := a.configured(id); ok {
		return nil, readOnly(id)
	}
	return a.Store.GetUpstream(ctx, id)
}

// updateUpstream replaces an upstream's settings; an absent client_secret
// keeps the stored one. The type, issuer and userinfo URL stay: they name
// whose subjects the links hold, and another provider's subjects must not
// sign in to the accounts linked to this one's.
func (a *API) updateUpstream(w http.ResponseWriter, r *http.Request) error {
	old, err := a.storedUpstream(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	var in NewUpstream
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.ID != "" && in.ID != old.ID {
		return badRequest("id cannot change")
	}
	in.ID = old.ID
	prev, err := upstream.Decode(storage.Upstream{ID: old.ID, Config: old.Config}, nil)
	if err != nil {
		return err
	}
	if err := sameProvider(prev, in); err != nil {
		return err
	}
	if err := secretStaysHome(prev, in); err != nil {
		return err
	}
	if err := a.checkUpstream(in); err != nil {
		return err
	}
	row, err := a.encodeUpstream(r.Context(), in)
	if err != nil {
		return err
	}
	if in.ClientSecret == "" {
		row.SecretSealed = old.SecretSealed
	}
	row.Enabled, row.CreatedAt, row.UpdatedAt = old.Enabled, old.CreatedAt, a.Now()
	if in.Enabled != nil {
		row.Enabled = *in.Enabled
	}
	if err := a.Store.UpdateUpstream(r.Context(), row); err != nil {
		return err
	}
	a.upstreamChanged(r, audit.UpstreamUpdated, row.ID)
	v, err := storedView(row)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// sameProvider refuses an update that would point the upstream at another
// provider.
func sameProvider(prev, next upstream.Config) error {
	p, n := prev.Resolved(), next.Resolved()
	switch {
	case p.Type != n.Type:
		return badRequest("type cannot change: delete the upstream (and its links) and add it again")
	case p.Issuer != n.Issuer:
		return badRequest("issuer cannot change: its subjects are another provider's; delete the upstream (and its links) and add it again")
	case p.UserinfoURL != n.UserinfoURL:
		return badRequest("userinfo_url cannot change: its subjects are another provider's; delete the upstream (and its links) and add it again")
	}
	return nil
}

// secretStaysHome refuses an update that moves an endpoint of a plain
// OAuth 2.0 or GitHub upstream (an OpenID Connect upstream's are its
// issuer's, which sameProvider keeps) without the client secret typed
// again: the stored secret goes to token_url, people's browsers to
// auth_url, their access tokens to emails_url. The secret is write-only,
// so whoever edits the upstream without knowing it must not be able to
// have it, or people's sign-ins, sent to a server of their choosing.
func secretStaysHome(prev, next upstream.Config) error {
	p, n := prev.Resolved(), next.Resolved()
	if next.ClientSecret == "" && (p.TokenURL != n.TokenURL || p.AuthURL != n.AuthURL || p.EmailsURL != n.EmailsURL) {
		return badRequest("auth_url, token_url and emails_url change only with client_secret: the stored secret, people's browsers " +
			"and their access tokens go there; type the secret again")
	}
	return nil
}

func (a *API) deleteUpstream(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := a.storedUpstream(r.Context(), id); err != nil {
		return err
	}
	if err := a.Store.DeleteUpstream(r.Context(), id); err != nil {
		return err
	}
	a.upstreamChanged(r, audit.UpstreamDeleted, id)
	return noContent(w, nil)
}

func (a *API) disableUpstream(w http.ResponseWriter, r *http.Request) error {
	return a.setUpstreamEnabled(w, r, false)
}

func (a *API) enableUpstream(w http.ResponseWriter, r *http.Request) error {
	return a.setUpstreamEnabled(w, r, true)
}

func (a *API) setUpstreamEnabled(w http.ResponseWriter, r *http.Request, on bool) error {
	row, err := a.storedUpstream(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	row.Enabled, row.UpdatedAt = on, a.Now()
	if err := a.Store.UpdateUpstream(r.Context(), *row); err != nil {
		return err
	}
	typ := audit.UpstreamDisabled
	if on {
		typ = audit.UpstreamEnabled
	}
	a.upstreamChanged(r, typ, row.ID)
	v, err := storedView(*row)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// upstreamChanged audits an operator's change and tells this node's
// registry (the others read it within their TTL).
func (a *API) upstreamChanged(r *http.Request, typ, id string) {
	a.Audit.Record(r.Context(), audit.Event{Type: typ, Detail: operator(r) + "; upstream=" + id})
	if a.UpstreamsChanged != nil {
		a.UpstreamsChanged()
	}
}

// UpstreamUser is a user linked to an upstream.
type UpstreamUser struct {
	UserID     string    `json:"user_id"`
	Username   string    `json:"username"`
	Subject    string    `json:"subject"`
	Email      string    `json:"email,omitempty"`
	LinkedAt   time.Time `json:"linked_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// UpstreamUsers is a page of an upstream's users; Next, when set, is the
// after of the next page.
type UpstreamUsers struct {
	Users []UpstreamUser `json:"users"`
	Next  string         `json:"next,omitempty"`
}

func (a *API) listUpstreamUsers(w http.ResponseWriter, r *http.Request) error {
	ctx, id := r.Context(), r.PathValue("id")
	if _, err := a.upstreamView(ctx, id); err != nil {
		return err
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit must be a number from 1 to 1000")
		}
		limit = n
	}
	links, err := a.Store.ListUpstreamUsers(ctx, id, r.URL.Query().Get("after"), limit+1)
	if err != nil {
		return err
	}
	out := UpstreamUsers{Users: []UpstreamUser{}}
	for i, l := range links {
		if i == limit {
			out.Next = links[i-1].UserID
			break
		}
		u := UpstreamUser{UserID: l.UserID, Subject: l.Subject, Email: l.Email, LinkedAt: l.CreatedAt, LastUsedAt: l.LastUsedAt}
		if usr, err := a.Store.GetUser(ctx, l.UserID); err == nil {
			u.Username = usr.Username
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		out.Users = append(out.Users, u)
	}
	return writeJSON(w, http.StatusOK, out)
}
