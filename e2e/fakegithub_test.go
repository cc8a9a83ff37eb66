package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// fakeGitHub is a plain OAuth 2.0 provider shaped like GitHub's OAuth apps,
// for the tests of bawwab's "github" upstreams: the authorization and token
// endpoints under /login/oauth and the REST API's /user and /user/emails on
// one loopback server. It answers as GitHub does where GitHub departs from
// RFC 6749: the token endpoint reports errors with status 200, answers JSON
// only to Accept: application/json (a form otherwise) and lists scopes
// with commas; redirects carry no iss; /user has a numeric id and a null
// email when the person keeps it private; /user/emails needs the user:email
// scope and answers 404 without it.
type fakeGitHub struct {
	URL string // the base of every endpoint, e.g. http://127.0.0.1:PORT

	cfg fakeGitHubConfig
	now func() time.Time

	mu     sync.Mutex
	user   githubUser
	denied bool
	codes  map[string]githubCode
	tokens map[string]githubGrant
	hits   map[string]int
}

// fakeGitHubConfig is the one OAuth app registered at the fake and the
// person who signs in to it.
type fakeGitHubConfig struct {
	ClientID, ClientSecret string
	RedirectURI            string // the app's registered callback URL
	User                   githubUser
}

// githubUser is a person at the fake GitHub.
type githubUser struct {
	ID     int64
	Login  string
	Name   string // empty: unset (null in /user)
	Email  string // the profile's public email; empty: private (null in /user)
	Emails []githubEmail
}

// githubEmail is one address in /user/emails.
type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

type githubGrant struct {
	user  githubUser
	scope []string
}

type githubCode struct {
	githubGrant
	redirectURI string
	challenge   string
	expires     time.Time
}

// startFakeGitHub serves the fake on loopback until t ends.
func startFakeGitHub(t *testing.T, cfg fakeGitHubConfig) *fakeGitHub {
	t.Helper()
	g := &fakeGitHub{cfg: cfg, now: time.Now, user: cfg.User,
		codes: map[string]githubCode{}, tokens: map[string]githubGrant{}, hits: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.accessToken)
	mux.HandleFunc("GET /user", g.api(g.profile))
	mux.HandleFunc("GET /user/emails", g.api(g.emails))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.hits[r.URL.Path]++
		g.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// Endpoint is the fake's authorization and token endpoints.
func (g *fakeGitHub) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{AuthURL: g.URL + "/login/oauth/authorize", TokenURL: g.URL + "/login/oauth/access_token"}
}

// SignInAs makes u the person who signs in from now on.
func (g *fakeGitHub) SignInAs(u githubUser) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.user = u
}

// Deny makes the person refuse (or, with false, again approve) the app.
func (g *fakeGitHub) Deny(deny bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.denied = deny
}

// Hits says how many requests reached path.
func (g *fakeGitHub) Hits(path string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits[path]
}

// Login requests authorizeURL (an authorization request to the fake) and
// returns where it redirects, the app's callback with code and state,
// without requesting it.
func (g *fakeGitHub) Login(t *testing.T, authorizeURL string) (callbackURL string) {
	t.Helper()
	if !strings.HasPrefix(authorizeURL, g.URL+"/") {
		t.Fatalf("%s is not an authorization request to the fake GitHub %s", authorizeURL, g.URL)
	}
	c := noRedirects(&http.Client{})
	resp, err := c.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("fake GitHub's authorize answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// authorize approves at once for the configured person, as GitHub does for
// an app the person has authorized before.
func (g *fakeGitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != g.cfg.ClientID {
		http.Error(w, "Not Found", http.StatusNotFound) // GitHub's page for an unknown app
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect != "" && redirect != g.cfg.RedirectURI {
		// GitHub sends the error to the app's registered callback.
		redirectGitHubStyle(w, r, g.cfg.RedirectURI, url.Values{"error": {"redirect_uri_mismatch"},
			"error_description": {"The redirect_uri MUST match the registered callback URL for this application."}, "state": {q.Get("state")}})
		return
	}
	if m := q.Get("code_challenge_method"); q.Has("code_challenge") && m != "S256" {
		http.Error(w, "code_challenge_method must be S256", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.denied {
		redirectGitHubStyle(w, r, g.cfg.RedirectURI, url.Values{"error": {"access_denied"},
			"error_description": {"The user has denied your application access."}, "state": {q.Get("state")}})
		return
	}
	code := rand.Text()
	g.codes[code] = githubCode{githubGrant: githubGrant{user: g.user, scope: githubScopes(q.Get("scope"))},
		redirectURI: redirect, challenge: q.Get("code_challenge"), expires: g.now().Add(10 * time.Minute)}
	redirectGitHubStyle(w, r, g.cfg.RedirectURI, url.Values{"code": {code}, "state": {q.Get("state")}})
}

func redirectGitHubStyle(w http.ResponseWriter, r *http.Request, to string, params url.Values) {
	if params.Get("state") == "" {
		params.Del("state")
	}
	http.Redirect(w, r, to+"?"+params.Encode(), http.StatusFound)
}

// githubScopes splits a scope parameter, which GitHub takes separated by
// spaces or commas.
func githubScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// accessToken redeems a code once. Errors come with status 200, as
// GitHub's do.
func (g *fakeGitHub) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != g.cfg.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(g.cfg.ClientSecret)) != 1 {
		githubTokenAnswer(w, r, url.Values{"error": {"incorrect_client_credentials"},
			"error_description": {"The client_id and/or client_secret passed are incorrect."}})
		return
	}
	g.mu.Lock()
	code, found := g.codes[r.PostForm.Get("code")]
	delete(g.codes, r.PostForm.Get("code"))
	g.mu.Unlock()
	if !found || g.now().After(code.expires) || !githubPKCE(code.challenge, r.PostForm.Get("code_verifier")) {
		githubTokenAnswer(w, r, url.Values{"error": {"bad_verification_code"},
			"error_description": {"The code passed is incorrect or expired."}})
		return
	}
	if redirect := r.PostForm.Get("redirect_uri"); redirect != "" && redirect != g.cfg.RedirectURI {
		githubTokenAnswer(w, r, url.Values{"error": {"redirect_uri_mismatch"},
			"error_description": {"The redirect_uri MUST match the registered callback URL for this application."}})
		return
	}
	token := "gho_" + rand.Text()
	g.mu.Lock()
	g.tokens[token] = code.githubGrant
	g.mu.Unlock()
	githubTokenAnswer(w, r, url.Values{"access_token": {token}, "token_type": {"bearer"}, "scope": {strings.Join(code.scope, ",")}})
}

// githubPKCE checks verifier against an S256 challenge; without a challenge
// any verifier passes.
func githubPKCE(challenge, verifier string) bool {
	if challenge == "" {
		return true
	}
	sum := sha256.Sum256([]byte(verifier))
	return verifier != "" && subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// githubTokenAnswer writes v as JSON to a request that accepts JSON, as a
// form otherwise.
func githubTokenAnswer(w http.ResponseWriter, r *http.Request, v url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	if !strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = w.Write([]byte(v.Encode()))
		return
	}
	m := map[string]string{}
	for k := range v {
		m[k] = v.Get(k)
	}
	writeGitHubJSON(w, http.StatusOK, m)
}

func writeGitHubJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// api checks the access token of an API request, given as "Bearer" or as
// GitHub's own "token" scheme.
func (g *fakeGitHub) api(h func(http.ResponseWriter, githubGrant)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, token, _ := strings.Cut(auth, " ")
		g.mu.Lock()
		grant, ok := g.tokens[token]
		g.mu.Unlock()
		if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
			writeGitHubJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		w.Header().Set("X-OAuth-Scopes", strings.Join(grant.scope, ", "))
		h(w, grant)
	}
}

func (g *fakeGitHub) profile(w http.ResponseWriter, grant githubGrant) {
	u := grant.user
	writeGitHubJSON(w, http.StatusOK, map[string]any{"login": u.Login, "id": u.ID, "name": nullIfEmpty(u.Name), "email": nullIfEmpty(u.Email), "type": "User",
		"avatar_url": "https://avatars.example/u/" + u.Login})
}

// nullIfEmpty is s, or JSON null when s is empty, as GitHub writes an unset
// name or a private email.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (g *fakeGitHub) emails(w http.ResponseWriter, grant githubGrant) {
	if !slices.Contains(grant.scope, "user:email") && !slices.Contains(grant.scope, "user") {
		writeGitHubJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	writeGitHubJSON(w, http.StatusOK, githubEmailsOrEmpty(grant.user.Emails))
}

func githubEmailsOrEmpty(e []githubEmail) []githubEmail {
	if e == nil {
		return []githubEmail{}
	}
	return e
}
