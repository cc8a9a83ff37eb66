package console

import (
	"net/http"
	"slices"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/storage"
)

// rotateKeys makes new signing keys; the old ones stay published until
// they retire (package jwks).
func (c *Console) rotateKeys(w http.ResponseWriter, r *http.Request, u *storage.User) {
	if _, err := c.remote(u).RotateKeys(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/", "console.keys_rotated")
}

// GrantsPage is a user's grants, each with its revoke form.
type GrantsPage struct {
	User   adminapi.User
	Grants []adminapi.Grant
}

func (c *Console) grants(w http.ResponseWriter, r *http.Request, u *storage.User) {
	rm := c.remote(u)
	who, err := rm.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	gs, err := rm.ListGrants(r.Context(), who.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "grants", "console.grants", u, GrantsPage{User: who, Grants: gs})
}

func (c *Console) revokeGrant(w http.ResponseWriter, r *http.Request, u *storage.User) {
	id := r.PathValue("id")
	if err := c.remote(u).RevokeGrant(r.Context(), id, r.PathValue("client")); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/users/"+id+"/grants", "console.grant_revoked")
}

func (c *Console) scopeList(w http.ResponseWriter, r *http.Request, u *storage.User) {
	ss, err := c.remote(u).ListScopes(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "scopes", "console.scopes", u, ss)
}

// ScopePage edits one scope's texts and sensitive flag.
type ScopePage struct {
	Scope adminapi.Scope
	Error string
}

func (c *Console) scopeOf(r *http.Request, u *storage.User) (adminapi.Scope, bool, error) {
	ss, err := c.remote(u).ListScopes(r.Context())
	i := slices.IndexFunc(ss, func(s adminapi.Scope) bool { return s.Name == r.PathValue("name") })
	if err != nil || i < 0 {
		return adminapi.Scope{}, false, err
	}
	return ss[i], true, nil
}

func (c *Console) editScope(w http.ResponseWriter, r *http.Request, u *storage.User) {
	s, ok, err := c.scopeOf(r, u)
	switch {
	case err != nil:
		c.fail(w, r, err)
	case !ok:
		c.message(w, r, http.StatusNotFound, "console.no_scope")
	default:
		c.render(w, r, http.StatusOK, "scope", "console.scope_edit", u, ScopePage{Scope: s})
	}
}

// saveScope replaces the scope's texts in both languages and its
// sensitive flag; its claims stay.
func (c *Console) saveScope(w http.ResponseWriter, r *http.Request, u *storage.User) {
	s, ok, err := c.scopeOf(r, u)
	if err != nil || !ok {
		c.editScope(w, r, u)
		return
	}
	in := adminapi.NewScope{Claims: s.Claims, Sensitive: r.PostFormValue("sensitive") == "on",
		Description: map[string]string{}, Explanation: map[string]string{}}
	for _, lang := range []string{"en", "ar"} {
		if v := r.PostFormValue("description_" + lang); v != "" {
			in.Description[lang] = v
		}
		if v := r.PostFormValue("explanation_" + lang); v != "" {
			in.Explanation[lang] = v
		}
	}
	_, err = c.remote(u).SaveScope(r.Context(), s.Name, in)
	var ae *adminapi.Error
	switch {
	case err == nil:
		back(w, r, "/console/scopes", "console.scope_saved")
	case asAPIError(err, &ae) && ae.Status < 500:
		s.Description, s.Explanation, s.Sensitive = in.Description, in.Explanation, in.Sensitive
		c.render(w, r, ae.Status, "scope", "console.scope_edit", u, ScopePage{Scope: s, Error: ae.Description})
	default:
		c.fail(w, r, err)
	}
}

// setRole gives or takes another user's admin role (admin=on or off);
// an admin cannot take their own, and so lock the console's last door.
func (c *Console) setRole(w http.ResponseWriter, r *http.Request, u *storage.User) {
	id := r.PathValue("id")
	if id == u.ID {
		c.message(w, r, http.StatusBadRequest, "console.role_self")
		return
	}
	on := r.PostFormValue("admin") == "on"
	if _, err := c.remote(u).SetAdmin(r.Context(), id, on); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/users", "console.role_saved")
}
