package authorize

import (
	"net/http"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// profileField is one input of the profile page, named after its claim
// (OpenID Connect Core §5.1).
type profileField struct {
	Name, Label, Value, Type, Auto string
}

type profileData struct {
	Notice, Error string
	Fields        []profileField
}

// profileFields lists what a person may change about themselves, with
// where each value lives in u. Email stays with the operator: bawwab
// cannot verify a new address.
func profileFields(u *storage.User) []struct {
	name, typ, auto string
	v               *string
} {
	p, a := &u.Profile, &u.Profile.Address
	return []struct {
		name, typ, auto string
		v               *string
	}{
		{"name", "text", "name", &u.Name},
		{"given_name", "text", "given-name", &p.GivenName},
		{"middle_name", "text", "additional-name", &p.MiddleName},
		{"family_name", "text", "family-name", &p.FamilyName},
		{"nickname", "text", "nickname", &p.Nickname},
		{"picture", "url", "photo", &u.Picture},
		{"website", "url", "url", &p.Website},
		{"gender", "text", "sex", &p.Gender},
		{"birthdate", "text", "bday", &p.Birthdate},
		{"zoneinfo", "text", "off", &p.Zoneinfo},
		{"locale", "text", "language", &p.Locale},
		{"phone_number", "tel", "tel", &p.PhoneNumber},
		{"street_address", "text", "street-address", &a.StreetAddress},
		{"locality", "text", "address-level2", &a.Locality},
		{"region", "text", "address-level1", &a.Region},
		{"postal_code", "text", "postal-code", &a.PostalCode},
		{"country", "text", "country-name", &a.Country},
	}
}

func (h *Handler) renderProfile(w http.ResponseWriter, r *http.Request, u *storage.User, status int, data profileData) {
	for _, f := range profileFields(u) {
		data.Fields = append(data.Fields, profileField{Name: f.name, Label: "claim." + f.name, Value: *f.v, Type: f.typ, Auto: f.auto})
	}
	csrf := h.Sessions.CSRFToken(w, r)
	h.UI.Render(w, r, status, "profile", "profile.title", ui.Page{CSRF: csrf, User: u.Name, Data: data})
}

// profilePage shows the signed-in person their standard claims.
func (h *Handler) profilePage(w http.ResponseWriter, r *http.Request) {
	sess := h.loggedIn(w, r, "/login")
	if sess == nil {
		return
	}
	u, err := h.Store.GetUser(r.Context(), sess.UserID)
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	var data profileData
	if r.URL.Query().Has("saved") {
		data.Notice = "profile.saved"
	}
	h.renderProfile(w, r, u, http.StatusOK, data)
}

// saveProfile stores what the person entered; a changed phone number is
// no longer verified. The formatted address is rebuilt from its parts.
func (h *Handler) saveProfile(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	sess := h.loggedIn(w, r, "/login")
	if sess == nil {
		return
	}
	u, err := h.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	phone := u.Profile.PhoneNumber
	for _, f := range profileFields(u) {
		*f.v = r.PostForm.Get(f.name)
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	if u.Profile.PhoneNumber != phone {
		u.Profile.PhoneNumberVerified = false
	}
	u.Profile.Address.Formatted = formatAddress(u.Profile.Address)
	if err := storage.CheckProfile(u); err != nil {
		h.renderProfile(w, r, u, http.StatusBadRequest, profileData{Error: err.Error()})
		return
	}
	u.Profile.UpdatedAt = h.Now()
	if err := h.Store.UpdateUser(ctx, *u); err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	http.Redirect(w, r, "/account/profile?saved", http.StatusSeeOther)
}

// formatAddress joins the parts of an address, one line each (OpenID
// Connect Core §5.1.1).
func formatAddress(a storage.Address) string {
	var out string
	for _, line := range []string{a.StreetAddress, joinNonEmpty(" ", a.PostalCode, a.Locality), a.Region, a.Country} {
		if line != "" {
			if out != "" {
				out += "\n"
			}
			out += line
		}
	}
	return out
}

func joinNonEmpty(sep string, parts ...string) string {
	var out string
	for _, p := range parts {
		if p != "" {
			if out != "" {
				out += sep
			}
			out += p
		}
	}
	return out
}
