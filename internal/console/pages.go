package console

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/storage"
)

// Dashboard is what the dashboard shows.
type Dashboard struct {
	Clients, Users, Grants int
	// Logins and Failures count the sign-ins of the last hour, from the
	// audit log (up to 1000 each).
	Logins, Failures int
	Keys             []KeyAge
	// Charts are this node's counters of /metrics over the last hour
	// and day.
	Charts []Chart
	// Registration is the policy of dynamic client registration.
	Registration adminapi.Registration
	// StoreOK says that every read of the page reached the store.
	StoreOK bool
}

// KeyAge is a signing key and how old it is.
type KeyAge struct {
	adminapi.Key
	Days int
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, u *storage.User) {
	d, err := c.counts(r, c.remote(u))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if d.Registration, err = c.remote(u).Registration(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	d.Charts = c.charts(c.lang(w, r))
	c.render(w, r, http.StatusOK, "dashboard", "console.dashboard", u, d)
}

func (c *Console) counts(r *http.Request, rm *adminapi.Remote) (Dashboard, error) {
	ctx := r.Context()
	var d Dashboard
	clients, err := rm.ListClients(ctx)
	if err != nil {
		return d, err
	}
	users, err := rm.ListUsers(ctx)
	if err != nil {
		return d, err
	}
	d.Clients, d.Users = len(clients), len(users)
	for _, cl := range clients {
		gs, err := rm.ListClientGrants(ctx, cl.ID)
		if err != nil {
			return d, err
		}
		d.Grants += len(gs)
	}
	since := c.Now().Add(-time.Hour)
	for typ, n := range map[string]*int{audit.Login: &d.Logins, audit.LoginFailed: &d.Failures} {
		evs, err := rm.ListAudit(ctx, storage.AuditFilter{Type: typ, Since: since, Limit: 1000})
		if err != nil {
			return d, err
		}
		*n = len(evs)
	}
	keys, err := rm.ListKeys(ctx)
	for _, k := range keys {
		d.Keys = append(d.Keys, KeyAge{k, int(c.Now().Sub(k.CreatedAt) / (24 * time.Hour))})
	}
	d.StoreOK = err == nil
	return d, err
}

// ClientsPage lists the clients; Created is a client just created, with
// its secret shown this once.
type ClientsPage struct {
	// Query keeps the clients whose id, name or a redirect URI contain it.
	Query   string
	Clients []adminapi.Client
	Created *adminapi.CreatedClient
	Error   string
	Form    adminapi.NewClient
}

func (c *Console) clients(w http.ResponseWriter, r *http.Request, u *storage.User) {
	c.clientsPage(w, r, u, http.StatusOK, ClientsPage{})
}

func (c *Console) clientsPage(w http.ResponseWriter, r *http.Request, u *storage.User, status int, p ClientsPage) {
	cs, err := c.remote(u).ListClients(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	slices.SortFunc(cs, func(a, b adminapi.Client) int { return strings.Compare(a.ID, b.ID) })
	p.Query = strings.TrimSpace(r.URL.Query().Get("q"))
	lq := strings.ToLower(p.Query)
	p.Clients = slices.DeleteFunc(cs, func(cl adminapi.Client) bool { return !matchClient(cl, lq) })
	c.render(w, r, status, "clients", "console.clients", u, p)
}

// createClient registers a client from the form; the API's refusal (a bad
// redirect URI, an id taken) is shown beside the form, kept as typed.
func (c *Console) createClient(w http.ResponseWriter, r *http.Request, u *storage.User) {
	in := adminapi.NewClient{ID: strings.TrimSpace(r.PostFormValue("client_id")), Name: strings.TrimSpace(r.PostFormValue("name")),
		Public: r.PostFormValue("public") == "on", RedirectURIs: strings.Fields(r.PostFormValue("redirect_uris")),
		Scopes: strings.Fields(r.PostFormValue("scopes")), GrantTypes: []string{"authorization_code", "refresh_token"}}
	created, err := c.remote(u).CreateClient(r.Context(), in)
	var ae *adminapi.Error
	switch {
	case err == nil:
		c.clientsPage(w, r, u, http.StatusCreated, ClientsPage{Created: &created})
	case asAPIError(err, &ae) && ae.Status < 500:
		c.clientsPage(w, r, u, ae.Status, ClientsPage{Error: ae.Description, Form: in})
	default:
		c.fail(w, r, err)
	}
}

func (c *Console) confirmDelete(w http.ResponseWriter, r *http.Request, u *storage.User) {
	cs, err := c.remote(u).ListClients(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(cs, func(cl adminapi.Client) bool { return cl.ID == r.PathValue("id") })
	if i < 0 {
		c.message(w, r, http.StatusNotFound, "console.no_client")
		return
	}
	c.render(w, r, http.StatusOK, "delete", "console.delete_client", u, cs[i])
}

func (c *Console) deleteClient(w http.ResponseWriter, r *http.Request, u *storage.User) {
	if r.PathValue("id") == ClientID {
		c.message(w, r, http.StatusBadRequest, "console.delete_self")
		return
	}
	if err := c.remote(u).DeleteClient(r.Context(), r.PathValue("id")); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/clients", "console.client_deleted")
}

// UsersPage lists the users whose username, name or email contain Query.
// Error and Form are a refused new user, kept as typed (but its
// password).
type UsersPage struct {
	Query string
	Users []adminapi.User
	Error string
	Form  adminapi.NewUser
}

func (c *Console) users(w http.ResponseWriter, r *http.Request, u *storage.User) {
	c.usersPage(w, r, u, http.StatusOK, UsersPage{})
}

func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, u *storage.User, status int, p UsersPage) {
	us, err := c.remote(u).ListUsers(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p.Query = strings.TrimSpace(r.URL.Query().Get("q"))
	lq := strings.ToLower(p.Query)
	p.Users = slices.DeleteFunc(us, func(x adminapi.User) bool {
		return !strings.Contains(strings.ToLower(x.Username+"\x00"+x.Name+"\x00"+x.Email), lq)
	})
	c.render(w, r, status, "users", "console.users", u, p)
}

func (c *Console) disableUser(w http.ResponseWriter, r *http.Request, u *storage.User) {
	if r.PathValue("id") == u.ID {
		c.message(w, r, http.StatusBadRequest, "console.disable_self")
		return
	}
	if _, err := c.remote(u).DisableUser(r.Context(), r.PathValue("id"), r.PostFormValue("reason")); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/users", "console.user_disabled")
}

func (c *Console) enableUser(w http.ResponseWriter, r *http.Request, u *storage.User) {
	if _, err := c.remote(u).EnableUser(r.Context(), r.PathValue("id")); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/users", "console.user_enabled")
}

// AuditPage is a page of the audit log, newest first; Older links to the
// next page: the events before the last one shown (to the millisecond
// the store keeps; another event of that very millisecond is skipped).
type AuditPage struct {
	User, Client, Type string
	// From and To are the time filter as typed (UTC, to the minute, as a
	// datetime-local input sends it): events from From, before To.
	From, To string
	Events   []adminapi.Event
	Older    string
}

// auditTimeLayout is how a datetime-local input sends a time.
const auditTimeLayout = "2006-01-02T15:04"

// auditTime is the time of a filter field: a datetime-local value or
// RFC 3339; zero (no filter) for anything else.
func auditTime(v string) time.Time {
	if t, err := time.Parse(auditTimeLayout, v); err == nil {
		return t
	}
	t, _ := time.Parse(time.RFC3339, v)
	return t
}

// auditPageSize is how many events a page of the audit log shows.
const auditPageSize = 50

func (c *Console) auditLog(w http.ResponseWriter, r *http.Request, u *storage.User) {
	q := r.URL.Query()
	f := storage.AuditFilter{UserID: q.Get("user"), ClientID: q.Get("client"), Type: q.Get("type"), Limit: auditPageSize,
		Since: auditTime(q.Get("from")), Until: auditTime(q.Get("to"))}
	if t := auditTime(q.Get("until")); !t.IsZero() && (f.Until.IsZero() || t.Before(f.Until)) {
		f.Until = t // a later page
	}
	evs, err := c.remote(u).ListAudit(r.Context(), f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := AuditPage{User: f.UserID, Client: f.ClientID, Type: f.Type, Events: evs}
	if !f.Since.IsZero() {
		p.From = f.Since.UTC().Format(auditTimeLayout)
	}
	if t := auditTime(q.Get("to")); !t.IsZero() {
		p.To = t.UTC().Format(auditTimeLayout)
	}
	if len(evs) == auditPageSize {
		next := q
		next.Set("until", evs[len(evs)-1].Time.UTC().Format(time.RFC3339Nano)) // exclusive
		p.Older = "/console/audit?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, "audit", "console.audit", u, p)
}
