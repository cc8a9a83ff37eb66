package console

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/storage"
)

// UpstreamsPage lists the upstream identity providers, with the form to
// add one; Error and Form are a refused one, kept as typed but for its
// client secret, which the console never shows.
type UpstreamsPage struct {
	Upstreams []adminapi.Upstream
	Error     string
	Form      adminapi.NewUpstream
}

// Types are the kinds of upstream the form offers.
func (UpstreamsPage) Types() []string { return []string{"oidc", "google", "github", "oauth2"} }

func (c *Console) upstreams(w http.ResponseWriter, r *http.Request, u *storage.User) {
	c.upstreamsPage(w, r, u, http.StatusOK, UpstreamsPage{})
}

func (c *Console) upstreamsPage(w http.ResponseWriter, r *http.Request, u *storage.User, status int, p UpstreamsPage) {
	ups, err := c.remote(u).ListUpstreams(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	slices.SortFunc(ups, func(a, b adminapi.Upstream) int { return strings.Compare(a.ID, b.ID) })
	p.Upstreams = ups
	c.render(w, r, status, "upstreams", "console.upstreams", u, p)
}

// upstreamForm reads the add form.
func upstreamForm(r *http.Request) adminapi.NewUpstream {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	in := adminapi.NewUpstream{ID: f("id"), Type: f("type"), Issuer: f("issuer"), ClientID: f("client_id"),
		ClientSecret: r.PostFormValue("client_secret"), Scopes: strings.Fields(f("scopes")),
		AllowedDomains: strings.Fields(f("allowed_domains")), Name: map[string]string{}}
	for _, lang := range []string{"en", "ar"} {
		if v := f("name_" + lang); v != "" {
			in.Name[lang] = v
		}
	}
	return in
}

// createUpstream adds an upstream through the admin API; its secret is
// sealed there and never shown again.
func (c *Console) createUpstream(w http.ResponseWriter, r *http.Request, u *storage.User) {
	in := upstreamForm(r)
	_, err := c.remote(u).CreateUpstream(r.Context(), in, false)
	var ae *adminapi.Error
	switch {
	case err == nil:
		back(w, r, "/console/upstreams", "console.upstream_added")
	case asAPIError(err, &ae) && ae.Status < 500:
		in.ClientSecret = ""
		c.upstreamsPage(w, r, u, ae.Status, UpstreamsPage{Error: ae.Description, Form: in})
	default:
		c.fail(w, r, err)
	}
}

// setUpstream enables (on=on) or disables the upstream.
func (c *Console) setUpstream(w http.ResponseWriter, r *http.Request, u *storage.User) {
	on := r.PostFormValue("enabled") == "on"
	if _, err := c.remote(u).SetUpstreamEnabled(r.Context(), r.PathValue("id"), on); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/upstreams", "console.upstream_saved")
}

// UpstreamUsersPage is a page of the users linked to an upstream.
type UpstreamUsersPage struct {
	Upstream adminapi.Upstream
	adminapi.UpstreamUsers
}

// upstreamUsersPageSize is how many linked users a page shows.
const upstreamUsersPageSize = 100

func (c *Console) upstreamUsers(w http.ResponseWriter, r *http.Request, u *storage.User) {
	rm := c.remote(u)
	up, err := rm.GetUpstream(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	us, err := rm.UpstreamUsers(r.Context(), up.ID, r.URL.Query().Get("after"), upstreamUsersPageSize)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "upstream_users", "console.upstream_users", u, UpstreamUsersPage{Upstream: up, UpstreamUsers: us})
}

// UpstreamPage edits one upstream's settings. Its client secret is
// write-only: the form never holds it, and an empty field keeps it. An
// upstream of the configuration file is shown read-only.
type UpstreamPage struct {
	Upstream adminapi.Upstream
	Error    string
}

// Words joins l with spaces, for a text field.
func (UpstreamPage) Words(l []string) string { return strings.Join(l, " ") }

func (c *Console) editUpstream(w http.ResponseWriter, r *http.Request, u *storage.User) {
	up, err := c.remote(u).GetUpstream(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "upstream", "console.upstream_edit", u, UpstreamPage{Upstream: up})
}

// upstreamEditForm is the upstream in with the settings of the edit form;
// its id stays, and an empty client secret keeps the stored one.
func upstreamEditForm(r *http.Request, in adminapi.NewUpstream) adminapi.NewUpstream {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	name := maps.Clone(in.Name) // labels of languages the form does not show stay
	if name == nil {
		name = map[string]string{}
	}
	for _, lang := range []string{"en", "ar"} {
		if v := f("name_" + lang); v != "" {
			name[lang] = v
		} else {
			delete(name, lang)
		}
	}
	in.Name = name
	in.Issuer, in.AuthURL, in.TokenURL, in.UserinfoURL, in.EmailsURL = f("issuer"), f("auth_url"), f("token_url"), f("userinfo_url"), f("emails_url")
	in.ClientID, in.ClientSecret = f("client_id"), r.PostFormValue("client_secret")
	in.Scopes, in.AllowedDomains, in.Icon = strings.Fields(f("scopes")), strings.Fields(f("allowed_domains")), f("icon")
	in.Claims.Subject, in.Claims.Username, in.Claims.Email = f("claim_subject"), f("claim_username"), f("claim_email")
	in.Claims.EmailVerified, in.Claims.Name = f("claim_email_verified"), f("claim_name")
	jit, on := f("jit") == "on", f("enabled") == "on"
	in.JIT, in.Enabled = &jit, &on
	return in
}

// saveUpstream replaces the upstream's settings through the admin API's
// update. Its refusal (a setting that does not validate, a provider
// changed, an upstream of the configuration file) is shown beside the
// form, kept as typed but for the secret.
func (c *Console) saveUpstream(w http.ResponseWriter, r *http.Request, u *storage.User) {
	rm := c.remote(u)
	old, err := rm.GetUpstream(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	in := upstreamEditForm(r, old.Config)
	_, err = rm.UpdateUpstream(r.Context(), old.ID, in)
	var ae *adminapi.Error
	switch {
	case err == nil:
		back(w, r, "/console/upstreams", "console.upstream_saved")
	case asAPIError(err, &ae) && ae.Status < 500:
		shown := old
		if !old.ReadOnly {
			shown.Config, shown.Enabled = in, *in.Enabled
			shown.ClientSecret, shown.Config.Enabled = "", nil
		}
		c.render(w, r, ae.Status, "upstream", "console.upstream_edit", u, UpstreamPage{Upstream: shown, Error: ae.Description})
	default:
		c.fail(w, r, err)
	}
}
