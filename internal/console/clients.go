package console

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/storage"
)

// ClientPage edits one client's settings; Secret is the secret of a
// client just made confidential, shown this once.
type ClientPage struct {
	Client adminapi.NewClient
	Secret string
	Error  string
}

// Lines joins l one a line, for a textarea.
func (ClientPage) Lines(l []string) string { return strings.Join(l, "\n") }

// Words joins l with spaces, for a text field.
func (ClientPage) Words(l []string) string { return strings.Join(l, " ") }

// JWKS is the client's JWK Set as text.
func (p ClientPage) JWKS() string { return string(p.Client.JWKS) }

func (c *Console) editClient(w http.ResponseWriter, r *http.Request, u *storage.User) {
	cl, err := c.remote(u).GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "client", "console.client_edit", u, ClientPage{Client: cl.NewClient})
}

// clientForm is the client cl with the settings of the form; the ones
// the form does not show stay.
func clientForm(r *http.Request, cl adminapi.NewClient) adminapi.NewClient {
	f := r.PostFormValue
	cl.Name = strings.TrimSpace(f("name"))
	cl.RedirectURIs, cl.Scopes, cl.GrantTypes = strings.Fields(f("redirect_uris")), strings.Fields(f("scopes")), strings.Fields(f("grant_types"))
	cl.JWKSURI, cl.JWKS = strings.TrimSpace(f("jwks_uri")), nil
	if j := strings.TrimSpace(f("jwks")); j != "" {
		cl.JWKS = json.RawMessage(j)
	}
	cl.RequirePAR, cl.Verified, cl.SecondFactor = f("require_par") == "on", f("verified") == "on", f("second_factor") == "on"
	cl.DPoPBound = f("dpop_bound") == "on"
	if m := strings.TrimSpace(f("auth_method")); m != "" {
		cl.AuthMethod = m
	}
	cl.Public = cl.AuthMethod == "none"
	return cl
}

// saveClient replaces the client's settings through the admin API's
// update; its refusal is shown beside the form, kept as typed.
func (c *Console) saveClient(w http.ResponseWriter, r *http.Request, u *storage.User) {
	rm := c.remote(u)
	old, err := rm.GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	in := clientForm(r, old.NewClient)
	if old.ID == ClientID {
		// The console's own sign-in stays as it is: loopback callbacks, a
		// confidential client of the code flow whose secret only the
		// server knows (register puts back whatever changed), and that sends
		// no DPoP proofs (a DPoP requirement would lock every operator out).
		in.RedirectURIs, in.GrantTypes, in.AuthMethod, in.Public = old.RedirectURIs, old.GrantTypes, old.AuthMethod, old.Public
		in.DPoPBound = old.DPoPBound
	}
	if in.JWKS != nil && !json.Valid(in.JWKS) {
		c.render(w, r, http.StatusBadRequest, "client", "console.client_edit", u, ClientPage{Client: in, Error: "jwks must be a JSON JWK Set"})
		return
	}
	saved, err := rm.UpdateClient(r.Context(), old.ID, in)
	var ae *adminapi.Error
	switch {
	case err == nil && saved.Secret != "":
		c.render(w, r, http.StatusOK, "client", "console.client_edit", u, ClientPage{Client: saved.NewClient, Secret: saved.Secret})
	case err == nil:
		back(w, r, "/console/clients", "console.client_saved")
	case asAPIError(err, &ae) && ae.Status < 500:
		c.render(w, r, ae.Status, "client", "console.client_edit", u, ClientPage{Client: in, Error: ae.Description})
	default:
		c.fail(w, r, err)
	}
}

// matchClient reports whether the client's id, name or a redirect URI
// contains q (lower case).
func matchClient(cl adminapi.Client, q string) bool {
	return strings.Contains(strings.ToLower(cl.ID+"\x00"+cl.Name+"\x00"+strings.Join(cl.RedirectURIs, "\x00")), q)
}

// Methods are the token endpoint authentication methods the form offers,
// the client's own among them.
func (p ClientPage) Methods() []string {
	ms := []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"}
	if p.Client.AuthMethod != "" && !slices.Contains(ms, p.Client.AuthMethod) {
		ms = append(ms, p.Client.AuthMethod)
	}
	return ms
}
