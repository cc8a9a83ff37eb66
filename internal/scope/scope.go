// Package scope holds bawwab's scope catalog: what each scope means in
// human words (English and Arabic), whether it is sensitive, and which
// OpenID Connect claims it releases.
package scope

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
)

// Standard scope names.
const (
	OpenID        = "openid"         // OpenID Connect Core §3.1.2.1
	Profile       = "profile"        // OpenID Connect Core §5.4
	Email         = "email"          // OpenID Connect Core §5.4
	Address       = "address"        // OpenID Connect Core §5.4
	Phone         = "phone"          // OpenID Connect Core §5.4
	OfflineAccess = "offline_access" // OpenID Connect Core §11
)

// Scope describes one scope.
type Scope struct {
	Name string
	// Description is what the user reads on the consent screen, by language.
	Description map[string]string
	// Explanation is one line, by language, on what sharing it means
	// for the person: shown under the description.
	Explanation map[string]string
	// Sensitive scopes are flagged on the consent screen and unchecked by
	// default.
	Sensitive bool
	// Required scopes cannot be unchecked by the user (openid).
	Required bool
	// Claims are the OpenID Connect claims this scope releases.
	Claims []string
}

// Describe returns the description in lang, falling back to English.
func (s Scope) Describe(lang string) string {
	if d, ok := s.Description[lang]; ok {
		return d
	}
	return s.Description["en"]
}

// Explain returns the explanation in lang, falling back to English. A
// scope stored without one (a catalog seeded before explanations
// existed) gets the default catalog's, if it has the same name.
func (s Scope) Explain(lang string) string {
	e := s.Explanation
	if len(e) == 0 {
		e = defaultExplanations[s.Name]
	}
	if d := e[lang]; d != "" {
		return d
	}
	return e["en"]
}

// Identity reports whether the scope is about who the person is: it
// releases OpenID Connect claims. Access to data and lasting access
// (files, offline_access) is not identity.
func (s Scope) Identity() bool { return len(s.Claims) > 0 }

// Catalog is the set of scopes a server knows. It may be replaced while
// in use (an operator edits scopes): readers always see one whole version.
type Catalog struct {
	cur atomic.Pointer[snapshot]
}

type snapshot struct {
	byName map[string]Scope
	order  []string
}

// NewCatalog returns a catalog of the given scopes.
func NewCatalog(scopes ...Scope) *Catalog {
	c := &Catalog{}
	c.Replace(scopes...)
	return c
}

// Replace swaps the catalog's scopes for these, in this order.
func (c *Catalog) Replace(scopes ...Scope) {
	s := &snapshot{byName: map[string]Scope{}}
	for _, sc := range scopes {
		if _, dup := s.byName[sc.Name]; !dup {
			s.order = append(s.order, sc.Name)
		}
		s.byName[sc.Name] = sc
	}
	c.cur.Store(s)
}

// All returns every scope in catalog order.
func (c *Catalog) All() []Scope {
	s := c.cur.Load()
	out := make([]Scope, len(s.order))
	for i, n := range s.order {
		out[i] = s.byName[n]
	}
	return out
}

// defaultExplanations say, for each scope of the default catalog, what
// sharing it means.
var defaultExplanations = map[string]map[string]string{
	OpenID: {"en": "The app learns an identifier for you, so it knows it is you when you come back.",
		"ar": "يعرف التطبيق معرّفاً خاصاً بك ليتعرّف عليك حين تعود."},
	Profile: {"en": "Your name, username and the profile details you filled in (nickname, website, birthdate and the like).",
		"ar": "اسمك واسم المستخدم وتفاصيل ملفك الشخصي التي ملأتها (اسم الشهرة والموقع وتاريخ الميلاد وما شابه)."},
	"photo": {"en": "The picture on your account, which the app may show to others.",
		"ar": "الصورة في حسابك، وقد يعرضها التطبيق للآخرين."},
	Email: {"en": "The app can write to you at this address.",
		"ar": "يستطيع التطبيق مراسلتك على هذا العنوان."},
	Address: {"en": "The app learns the postal address on your account, for example to send you something.",
		"ar": "يعرف التطبيق العنوان البريدي المسجّل في حسابك، مثلاً ليرسل إليك شيئاً."},
	Phone: {"en": "The app learns your phone number and whether it was confirmed; it could call or text you.",
		"ar": "يعرف التطبيق رقم هاتفك وهل تم تأكيده؛ وقد يتصل بك أو يراسلك."},
	"files.read": {"en": "The app can read the names and contents of your files. It cannot change them.",
		"ar": "يستطيع التطبيق قراءة أسماء ملفاتك ومحتواها، دون تعديلها."},
	OfflineAccess: {"en": "Without this, the app's access ends soon after you leave it. With it, the app keeps access until you revoke it.",
		"ar": "من دونه ينتهي وصول التطبيق بعد قليل من مغادرتك. ومعه يبقى وصوله حتى تسحب الإذن."},
	"payment": {"en": "The app can see your saved cards and charge them.",
		"ar": "يستطيع التطبيق رؤية بطاقاتك المحفوظة والدفع بها."},
}

// Default is the catalog bawwab starts with.
func Default() *Catalog {
	scopes := []Scope{
		{Name: OpenID, Required: true, Claims: []string{"sub"},
			Description: map[string]string{"en": "Confirm who you are", "ar": "تأكيد هويتك"}},
		{Name: Profile, Claims: ProfileClaims,
			Description: map[string]string{
				"en": "Your name and profile: nickname, website, gender, birthdate, time zone and language",
				"ar": "اسمك وملفك الشخصي: اسم الشهرة والموقع الإلكتروني والجنس وتاريخ الميلاد والمنطقة الزمنية واللغة"}},
		{Name: "photo", Claims: []string{"picture"},
			Description: map[string]string{"en": "Your profile photo", "ar": "صورتك الشخصية"}},
		{Name: Email, Claims: []string{"email", "email_verified"},
			Description: map[string]string{"en": "Your email address", "ar": "عنوان بريدك الإلكتروني"}},
		{Name: Address, Claims: []string{"address"},
			Description: map[string]string{"en": "Your postal address", "ar": "عنوانك البريدي"}},
		{Name: Phone, Claims: []string{"phone_number", "phone_number_verified"},
			Description: map[string]string{"en": "Your phone number", "ar": "رقم هاتفك"}},
		{Name: "files.read",
			Description: map[string]string{"en": "See your files", "ar": "الاطلاع على ملفاتك"}},
		{Name: OfflineAccess,
			Description: map[string]string{"en": "Keep access while you are away", "ar": "الاحتفاظ بالوصول أثناء غيابك"}},
		{Name: "payment", Sensitive: true,
			Description: map[string]string{"en": "Your saved payment cards", "ar": "بطاقات الدفع المحفوظة لديك"}},
	}
	for i := range scopes {
		scopes[i].Explanation = maps.Clone(defaultExplanations[scopes[i].Name])
	}
	return NewCatalog(scopes...)
}

// ProfileClaims are the claims of the profile scope (OpenID Connect Core
// §5.4); picture has a scope of its own, photo.
var ProfileClaims = []string{"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "website", "gender",
	"birthdate", "zoneinfo", "locale", "updated_at"}

// Get returns the scope with this name.
func (c *Catalog) Get(name string) (Scope, bool) {
	s, ok := c.cur.Load().byName[name]
	return s, ok
}

// Names returns every scope name in catalog order.
func (c *Catalog) Names() []string { return slices.Clone(c.cur.Load().order) }

// Claims returns the claims released by the given scopes.
func (c *Catalog) Claims(scopes []string) []string {
	s := c.cur.Load()
	var out []string
	for _, name := range scopes {
		out = append(out, s.byName[name].Claims...)
	}
	return out
}

// Protocol reports whether name is a scope the protocol itself defines
// behaviour for (openid, offline_access): it cannot be deleted.
func Protocol(name string) bool { return name == OpenID || name == OfflineAccess }

// UserClaims are the claims a scope may release: the user fields bawwab
// keeps.
var UserClaims = []string{"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "picture", "website",
	"gender", "birthdate", "zoneinfo", "locale", "updated_at", "email", "email_verified", "address", "phone_number", "phone_number_verified"}

// Parse splits a scope parameter (RFC 6749 §3.3) into distinct scope
// tokens in order of first appearance. It rejects characters outside
// %x21 / %x23-5B / %x5D-7E.
func Parse(param string) ([]string, error) {
	var out []string
	for _, tok := range strings.Split(param, " ") {
		if tok == "" {
			continue
		}
		for i := 0; i < len(tok); i++ {
			b := tok[i]
			if b < 0x21 || b == 0x22 || b == 0x5c || b > 0x7e {
				return nil, fmt.Errorf("scope %q has a character not allowed by RFC 6749 section 3.3", tok)
			}
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out, nil
}

// Subset reports whether every scope of a is in b.
func Subset(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

// Join formats scopes as a scope parameter.
func Join(scopes []string) string { return strings.Join(scopes, " ") }
