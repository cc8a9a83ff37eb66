// Package upstream signs people in through other identity providers: an
// OpenID Connect provider (OpenID Connect Core 1.0 §3.1, the authorization
// code flow) or a plain OAuth 2.0 server with a userinfo URL (GitHub), each
// configured as an "upstream".
//
// For an OpenID Connect upstream, bawwab reads the provider's metadata
// (OpenID Connect Discovery 1.0), sends the person there with a random
// state, a nonce and a PKCE S256 challenge (RFC 7636), and on the way back
// checks the state (single use, bound to the browser by a sealed cookie
// and to the pending authorization request), the iss response parameter
// (RFC 9207 §2.4: required when the upstream advertises
// authorization_response_iss_parameter_supported, compared whenever
// present), the ID token (signature against the upstream's JWKS, iss, aud,
// exp, and the nonce, OpenID Connect Core §3.1.3.7) and the userinfo
// answer's sub (§5.3.4). A plain OAuth 2.0 upstream has no ID token: the
// identity is what its userinfo URL answers, read through a claim mapping,
// and for GitHub the verified addresses of /user/emails.
//
// Every request to an upstream goes through package outbound (no internal
// addresses unless the operator allows them, no redirects, bounded
// answers). Upstream tokens live only for the callback that received them:
// nothing stores them and no downstream client sees them. The sign-in is a
// first factor of package signin proving amr "fed" (RFC 8176 §2), so the
// operator's second-factor policy still applies after it.
//
// Accounts: an upstream identity (upstream id, subject) is linked to one
// local user. The first sign-in creates the user just in time when the
// upstream allows it (and the email domain is allowed); an upstream email
// that a local account has already confirmed is never linked silently:
// when the upstream asserts it verified, the person must first sign in to
// the local account, then the link is made; when it does not, the sign-in
// is refused.
package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bawwab/bawwab/internal/storage"
)

// Types of upstream.
const (
	TypeOIDC   = "oidc"   // OpenID Connect, from the issuer's discovery document
	TypeOAuth2 = "oauth2" // plain OAuth 2.0 with a userinfo URL
	TypeGoogle = "google" // preset: OpenID Connect at accounts.google.com
	TypeGitHub = "github" // preset: OAuth 2.0 at github.com, verified emails from /user/emails
)

// Claims names the userinfo (or ID token) members that hold each part of
// an identity. Subject is required; the others may be empty.
type Claims struct {
	Subject       string `yaml:"subject" json:"subject,omitempty"`
	Username      string `yaml:"username" json:"username,omitempty"`
	Email         string `yaml:"email" json:"email,omitempty"`
	EmailVerified string `yaml:"email_verified" json:"email_verified,omitempty"`
	Name          string `yaml:"name" json:"name,omitempty"`
}

// Config is one upstream as the operator configures it (the YAML
// "upstreams:" list).
type Config struct {
	// ID names the upstream in URLs (/upstream/{id}/callback) and links:
	// lowercase letters, digits and '-', at most 32.
	ID string `yaml:"id" json:"id,omitempty"`
	// Name is the button's label by language ("en", "ar"); "en" is
	// required and stands in for a language without its own.
	Name map[string]string `yaml:"name" json:"name,omitempty"`
	Type string            `yaml:"type" json:"type,omitempty"`
	// Issuer is an OpenID Connect upstream's issuer identifier.
	Issuer string `yaml:"issuer" json:"issuer,omitempty"`
	// AuthURL, TokenURL and UserinfoURL are a plain OAuth 2.0 upstream's
	// endpoints; EmailsURL lists its verified addresses (GitHub).
	AuthURL     string `yaml:"auth_url" json:"auth_url,omitempty"`
	TokenURL    string `yaml:"token_url" json:"token_url,omitempty"`
	UserinfoURL string `yaml:"userinfo_url" json:"userinfo_url,omitempty"`
	EmailsURL   string `yaml:"emails_url" json:"emails_url,omitempty"`

	ClientID     string   `yaml:"client_id" json:"client_id,omitempty"`
	ClientSecret string   `yaml:"client_secret" json:"client_secret,omitempty"`
	Scopes       []string `yaml:"scopes" json:"scopes,omitempty"`
	Claims       Claims   `yaml:"claims" json:"claims,omitempty"`
	// AllowedDomains, when set, are the only email domains that may sign
	// in (and be created) through this upstream.
	AllowedDomains []string `yaml:"allowed_domains" json:"allowed_domains,omitempty"`
	// JIT creates a local account at the first sign-in (default true).
	JIT *bool `yaml:"jit" json:"jit,omitempty"`
	// Enabled shows the upstream on the login page (default true).
	Enabled *bool `yaml:"enabled" json:"enabled,omitempty"`
	// Icon, optional, is the button's image: "google" or "github" (served
	// by bawwab itself), an https URL, or a data: URI of an image.
	Icon string `yaml:"icon" json:"icon,omitempty"`
}

// On reports whether the upstream is enabled.
func (c Config) On() bool { return c.Enabled == nil || *c.Enabled }

// CreatesAccounts reports whether a first sign-in creates a local account.
func (c Config) CreatesAccounts() bool { return c.JIT == nil || *c.JIT }

// OIDC reports whether the upstream speaks OpenID Connect.
func (c Config) OIDC() bool { return c.Type == TypeOIDC || c.Type == TypeGoogle }

// Label is the upstream's name in lang, or in English.
func (c Config) Label(lang string) string {
	if n := c.Name[lang]; n != "" {
		return n
	}
	return c.Name["en"]
}

// Resolved returns c with its preset's URLs, scopes and claim mapping
// filled in where the operator left them empty.
func (c Config) Resolved() Config {
	var p Config
	switch c.Type {
	case TypeGoogle:
		p = Config{Issuer: "https://accounts.google.com", Scopes: []string{"openid", "email", "profile"}}
	case TypeGitHub:
		p = Config{AuthURL: "https://github.com/login/oauth/authorize", TokenURL: "https://github.com/login/oauth/access_token",
			UserinfoURL: "https://api.github.com/user", EmailsURL: "https://api.github.com/user/emails",
			Scopes: []string{"read:user", "user:email"}, Claims: Claims{Subject: "id", Username: "login", Email: "email", Name: "name"}}
	case TypeOIDC:
		p = Config{Scopes: []string{"openid", "email", "profile"}}
	}
	if c.OIDC() {
		p.Claims = Claims{Subject: "sub", Username: "preferred_username", Email: "email", EmailVerified: "email_verified", Name: "name"}
	}
	c.Issuer = or(c.Issuer, p.Issuer)
	c.AuthURL, c.TokenURL = or(c.AuthURL, p.AuthURL), or(c.TokenURL, p.TokenURL)
	c.UserinfoURL, c.EmailsURL = or(c.UserinfoURL, p.UserinfoURL), or(c.EmailsURL, p.EmailsURL)
	if len(c.Scopes) == 0 {
		c.Scopes = p.Scopes
	}
	c.Claims = Claims{Subject: or(c.Claims.Subject, p.Claims.Subject), Username: or(c.Claims.Username, p.Claims.Username),
		Email: or(c.Claims.Email, p.Claims.Email), EmailVerified: or(c.Claims.EmailVerified, p.Claims.EmailVerified),
		Name: or(c.Claims.Name, p.Claims.Name)}
	for i, d := range c.AllowedDomains {
		c.AllowedDomains[i], _ = storage.NormalDomain(d)
	}
	return c
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ValidID reports whether id is an upstream id.
func ValidID(id string) bool { return idRE.MatchString(id) }

// Validate checks a list of upstreams (after Resolved) and returns every
// problem found.
func Validate(list []Config) error {
	var errs []error
	seen := map[string]bool{}
	for i, c := range list {
		c = c.Resolved()
		name := fmt.Sprintf("upstreams[%d]", i)
		if c.ID != "" {
			name = fmt.Sprintf("upstream %q", c.ID)
		}
		if seen[c.ID] {
			errs = append(errs, fmt.Errorf("%s: the id is used twice", name))
		}
		seen[c.ID] = true
		for _, p := range c.problems() {
			errs = append(errs, fmt.Errorf("%s: %s", name, p))
		}
	}
	return errors.Join(errs...)
}

// problems lists what is wrong with one resolved upstream.
func (c Config) problems() []string {
	var p []string
	if !idRE.MatchString(c.ID) {
		p = append(p, "id must be 1 to 32 lowercase letters, digits or '-', starting with a letter or digit")
	}
	if c.Name["en"] == "" {
		p = append(p, "name must have an English label (name: {en: …, ar: …})")
	}
	if c.ClientID == "" {
		p = append(p, "client_id is required")
	}
	if c.Claims.Subject == "" {
		p = append(p, "claims.subject is required: the member that identifies the person")
	}
	if msg := iconProblem(c.Icon); msg != "" {
		p = append(p, msg)
	}
	for _, d := range c.AllowedDomains {
		if d == "" || strings.ContainsAny(d, "@/ ") {
			p = append(p, fmt.Sprintf("allowed_domains: %q is not a domain", d))
		}
	}
	return append(p, c.urlProblems()...)
}

func (c Config) urlProblems() []string {
	var p []string
	need := map[string]string{}
	switch {
	case c.OIDC():
		need["issuer"] = c.Issuer
	case c.Type == TypeOAuth2 || c.Type == TypeGitHub:
		need["auth_url"], need["token_url"], need["userinfo_url"] = c.AuthURL, c.TokenURL, c.UserinfoURL
	default:
		return []string{fmt.Sprintf("type %q must be oidc, oauth2, google or github", c.Type)}
	}
	for _, k := range slices.Sorted(maps.Keys(need)) {
		if u, err := url.Parse(need[k]); err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			p = append(p, fmt.Sprintf("%s must be an absolute http(s) URL", k))
		}
	}
	return p
}

// Identity is who an upstream says the person is.
type Identity struct {
	Upstream      string
	Subject       string
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	// SID is the upstream's session id (the ID token's sid claim), which
	// its back-channel logout names.
	SID string
}

// ErrNoSubject means the upstream's answer lacks the subject claim, or
// its subject is no identifier (over 255 bytes, control characters).
var ErrNoSubject = errors.New("upstream: the answer names no subject")

// Map reads an identity from claims (a userinfo answer or ID token
// claims, decoded with json.Number) through the mapping m. A number
// subject (GitHub's id) is kept as its decimal text; email_verified may be
// a boolean or the string "true" (some providers send strings).
func Map(claims map[string]any, m Claims) (Identity, error) {
	id := Identity{Subject: text(claims[m.Subject]), Username: clean(text(claims[m.Username]), 64),
		Email: address(text(claims[m.Email])), Name: clean(text(claims[m.Name]), 200)}
	if id.Subject == "" || len(id.Subject) > 255 || clean(id.Subject, 255) != id.Subject {
		return Identity{}, ErrNoSubject
	}
	if m.EmailVerified != "" {
		switch v := claims[m.EmailVerified].(type) {
		case bool:
			id.EmailVerified = v
		case string:
			id.EmailVerified = strings.EqualFold(v, "true")
		}
	}
	return id, nil
}

// address is an upstream's email address as bawwab keeps it, or "" for
// one that is none (kept nowhere, matched with nothing): without an '@',
// with white space or control characters, or over 254 bytes (RFC 5321
// §4.5.3.1.3). A trailing dot of the domain is dropped.
func address(s string) string {
	// The root domain's trailing dot names the same mailbox: without it,
	// the address is a local account's in another spelling.
	s = strings.TrimRight(strings.TrimSpace(s), ".")
	if len(s) > 254 || !strings.Contains(s, "@") || clean(s, 254) != s || strings.ContainsAny(s, " \t\r\n") {
		return ""
	}
	return s
}

// clean is s as a store keeps it: valid UTF-8 without NUL or other
// control characters, at most max bytes (cut at a character boundary).
func clean(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	for len(s) > limit {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// text is a claim as text: a string, or a whole number's digits.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return strconv.FormatInt(n, 10)
		}
		return v.String()
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
	}
	return ""
}

// Domain returns the domain of an email address as it is compared
// (storage.NormalDomain: lower case, internationalised names in their
// ASCII form), or "".
func Domain(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return ""
	}
	d, _ := storage.NormalDomain(email[at+1:])
	return d
}

// DomainAllowed reports whether the identity's email may sign in through
// an upstream with this allow-list: any when the list is empty; else only
// a verified address in a listed domain.
func DomainAllowed(allowed []string, id Identity) bool {
	if len(allowed) == 0 {
		return true
	}
	return id.EmailVerified && slices.Contains(allowed, Domain(id.Email))
}
