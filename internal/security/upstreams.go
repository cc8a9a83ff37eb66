package security

import (
	"errors"
	"net/http"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// linkView is an upstream identity linked to the account.
type linkView struct{ Upstream, Name, Email, Since string }

// linkedAccounts lists the user's links to upstream identity providers.
func (h *Handler) linkedAccounts(r *http.Request, u *storage.User, d *pageData) error {
	if h.Upstreams == nil {
		return nil
	}
	links, err := h.Store.ListUpstreamLinks(r.Context(), u.ID)
	if err != nil {
		return err
	}
	providers, err := h.Upstreams.Registry.Providers(r.Context())
	if err != nil {
		return err
	}
	lang := ui.Lang(nil, r)
	for _, l := range links {
		name := l.Upstream
		for _, p := range providers {
			if p.ID == l.Upstream {
				name = p.Label(lang)
			}
		}
		d.Links = append(d.Links, linkView{Upstream: l.Upstream, Name: name, Email: l.Email, Since: date(l.CreatedAt)})
	}
	d.LinksOn = true
	return nil
}

// unlink removes a link to an upstream while another way to sign in
// remains: a password, a passkey, or another link.
func (h *Handler) unlink(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil {
		return
	}
	ok, err := h.Upstreams.Unlink(r.Context(), u, r.PostForm.Get("upstream"))
	switch {
	case errors.Is(err, storage.ErrNotFound): // another user's link, or none: nothing to say
		done(w, r, "security.upstream.unlinked")
	case err != nil:
		h.fail(w, r, oautherr.Wrap(err))
	case !ok:
		h.render(w, r, http.StatusConflict, sess, u, pageData{Error: "security.upstream.last"})
	default:
		done(w, r, "security.upstream.unlinked")
	}
}
