package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/upstream"
)

// The helpers of sign-in through an upstream identity provider. An
// upstream is anything with an issuer (or OAuth 2.0 URLs), a client
// registered for bawwab's callback, and a way to drive a browser through
// its own login ([upstreamOP]); startBawwabOP (a second bawwab), startFakeOP
// (an OpenID Connect provider the test can make misbehave) and
// startGitHubOP (GitHub-shaped OAuth 2.0) are three, and an independent
// implementation (node-oidc-provider) plugs in as a fourth.

// upstreamOP is an upstream identity provider as the tests use it.
type upstreamOP interface {
	// Config is the upstream's entry in bawwab's upstreams list, with id.
	Config(id string) upstream.Config
	// Register registers bawwab's callback (redirect URI) as a client.
	Register(t *testing.T, callback string)
	// SignIn drives the browser from the authorization URL bawwab sent it
	// to, through the upstream's login as who, and returns the URL the
	// upstream sends it back to (bawwab's callback with code and state).
	SignIn(t *testing.T, b *browser, authURL string, who upstreamUser) string
}

// upstreamUser is a person at an upstream.
type upstreamUser struct {
	Username, Password, Email string
	EmailVerified             bool
}

// startWithUpstream starts bawwab signing in through op as upstream id
// (plus changes of the upstream's entry by edit) and registers bawwab's
// callback at op.
func startWithUpstream(t *testing.T, op upstreamOP, id string, edit ...func(*upstream.Config)) *env {
	t.Helper()
	c := op.Config(id)
	for _, f := range edit {
		f(&c)
	}
	e := startWith(t, func(cfg *config.Config) { cfg.Upstreams = []upstream.Config{c} })
	op.Register(t, e.URL+"/upstream/"+id+"/callback")
	return e
}

// startUpstreamLogin posts the "Continue with" button of upstream id on
// the login page of a pending request and returns where bawwab sends the
// browser (the upstream's authorization URL).
func (b *browser) startUpstreamLogin(loginURL, id string) string {
	b.e.t.Helper()
	p := b.get(loginURL)
	if p.Status != http.StatusOK {
		b.e.t.Fatalf("login page: %d %s", p.Status, p.Body)
	}
	if !strings.Contains(p.Body, `value="upstream:`+id+`"`) {
		b.e.t.Fatalf("the login page has no button for upstream %s: %s", id, p.Body)
	}
	u, _ := url.Parse(loginURL)
	p = b.post("/login", url.Values{"csrf_token": {csrfOf(b.e.t, p)}, "req": {u.Query().Get("req")}, "step": {"upstream:" + id}})
	if p.Status != http.StatusSeeOther || p.Location == "" {
		b.e.t.Fatalf("continue with %s: %d %s", id, p.Status, p.Body)
	}
	return p.Location
}

// upstreamLogin runs a downstream request through upstream id as who and
// returns bawwab's answer to the callback (a redirect to consent on
// success, a page otherwise) and the callback URL.
func (b *browser) upstreamLogin(op upstreamOP, r authRequest, id string, who upstreamUser) (page, string) {
	b.e.t.Helper()
	p := b.get(r.url())
	if !strings.HasPrefix(p.Location, "/login") {
		b.e.t.Fatalf("authorize: %d %s", p.Status, p.Location)
	}
	callback := op.SignIn(b.e.t, b, b.startUpstreamLogin(p.Location, id), who)
	return b.get(callback), callback
}

// ---- a second bawwab as the upstream

// bawwabOP is a second bawwab instance, with its own store, as upstream.
type bawwabOP struct{ e *env }

func startBawwabOP(t *testing.T) *bawwabOP { return &bawwabOP{e: start(t)} }

func (op *bawwabOP) Config(id string) upstream.Config {
	return upstream.Config{ID: id, Name: map[string]string{"en": "Example Corp", "ar": "إكزامبل كورب"}, Type: upstream.TypeOIDC,
		Issuer: op.e.URL, ClientID: "bawwab-downstream", ClientSecret: "downstream-secret-0123456789abcdef"}
}

func (op *bawwabOP) Register(t *testing.T, callback string) {
	t.Helper()
	_, err := admin.AddClient(context.Background(), op.e.Store, admin.ClientSpec{ID: "bawwab-downstream", Name: "Downstream bawwab",
		RedirectURIs: []string{callback}, Scopes: []string{"openid", "email", "profile"}, Secret: "downstream-secret-0123456789abcdef"}, scope.Default())
	if err != nil {
		t.Fatal(err)
	}
}

// addUser adds a person to the upstream bawwab.
func (op *bawwabOP) addUser(t *testing.T, who upstreamUser) {
	t.Helper()
	_, err := admin.AddUser(context.Background(), op.e.Store, admin.UserSpec{Username: who.Username, Password: who.Password, Name: who.Username,
		Email: who.Email, EmailVerified: who.EmailVerified}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
}

func (op *bawwabOP) SignIn(t *testing.T, b *browser, authURL string, who upstreamUser) string {
	t.Helper()
	ob := b.on(op.e)
	p := ob.get(authURL)
	if strings.HasPrefix(p.Location, "/login") {
		p = ob.login(p.Location, who.Username, who.Password)
	}
	if strings.HasPrefix(p.Location, "/consent") {
		p = ob.consent(p.Location, true, "openid", "email", "profile")
	}
	if p.Location == "" {
		t.Fatalf("upstream sign-in: %d %s", p.Status, p.Body)
	}
	return p.Location
}

// ---- a small OpenID Connect provider that can misbehave

// fakeOP is an OpenID Connect provider of a few handlers: discovery,
// JWKS, an authorization endpoint that approves at once as the person
// named in the query's login_hint-less "next" person, a token endpoint
// that checks PKCE, and userinfo. Its knobs make it lie.
type fakeOP struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu     sync.Mutex
	who    upstreamUser
	sid    string // the session id of its latest ID token
	codes  map[string]fakeCode
	issued []string // every token it gave out, to look for downstream
	// Knobs: the iss of the authorization response ("" is the issuer,
	// "-" none), the ID token's nonce and issuer ("" the right ones),
	// whether discovery says iss is sent (RFC 9207), and an error to
	// answer the authorization request with.
	RespIss, IDNonce, IDIssuer string
	IssParam                   bool
	AuthError                  string
	// IDAud, when set, is the ID token's aud; IDAzp its azp.
	IDAud any
	IDAzp string
	// DiscoveryIssuer, when set, is the issuer its metadata claims.
	DiscoveryIssuer string
	// GitHub makes it a GitHub-shaped OAuth 2.0 server instead.
	GitHub bool
	// jwksHits counts the requests for its keys.
	jwksHits atomic.Int64
}

type fakeCode struct {
	challenge, nonce, clientID string
	who                        upstreamUser
}

func startFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{key: key, codes: map[string]fakeCode{}, IssParam: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	mux.HandleFunc("GET /user", op.userinfo)
	mux.HandleFunc("GET /user/emails", op.emails)
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

// startGitHubOP is a GitHub-shaped OAuth 2.0 server: /user answers a
// number id and a login, /user/emails the verified addresses.
func startGitHubOP(t *testing.T) *fakeOP {
	op := startFakeOP(t)
	op.GitHub = true
	return op
}

func (op *fakeOP) Config(id string) upstream.Config {
	c := upstream.Config{ID: id, Name: map[string]string{"en": "Fake OP", "ar": "مزوّد تجريبي"}, Type: upstream.TypeOIDC, Issuer: op.srv.URL,
		ClientID: "bawwab", ClientSecret: "fake-secret"}
	if op.GitHub {
		c = upstream.Config{ID: id, Name: map[string]string{"en": "GitHub"}, Type: upstream.TypeGitHub, ClientID: "gh-client", ClientSecret: "gh-secret",
			AuthURL: op.srv.URL + "/authorize", TokenURL: op.srv.URL + "/token", UserinfoURL: op.srv.URL + "/user", EmailsURL: op.srv.URL + "/user/emails"}
	}
	return c
}

func (op *fakeOP) Register(*testing.T, string) {}

func (op *fakeOP) SignIn(t *testing.T, b *browser, authURL string, who upstreamUser) string {
	t.Helper()
	op.mu.Lock()
	op.who = who
	op.mu.Unlock()
	p := b.get(authURL)
	if p.Status != http.StatusFound {
		t.Fatalf("fake upstream: %d %s", p.Status, p.Body)
	}
	return p.Location
}

func writeJSONTest(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (op *fakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	u := op.srv.URL
	writeJSONTest(w, map[string]any{"issuer": cmpOr(op.DiscoveryIssuer, u), "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token",
		"userinfo_endpoint": u + "/userinfo", "jwks_uri": u + "/jwks", "id_token_signing_alg_values_supported": []string{"ES256"},
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"authorization_response_iss_parameter_supported": op.IssParam})
}

func (op *fakeOP) jwks(w http.ResponseWriter, _ *http.Request) {
	op.jwksHits.Add(1)
	writeJSONTest(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
}

func (op *fakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	to, _ := url.Parse(q.Get("redirect_uri"))
	back := url.Values{"state": {q.Get("state")}}
	op.mu.Lock()
	if op.AuthError != "" {
		back.Set("error", op.AuthError)
	} else {
		code := "code-" + token.NewID()
		op.codes[code] = fakeCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), clientID: q.Get("client_id"), who: op.who}
		back.Set("code", code)
	}
	switch op.RespIss {
	case "":
		if !op.GitHub {
			back.Set("iss", op.srv.URL)
		}
	case "-":
	default:
		back.Set("iss", op.RespIss)
	}
	op.mu.Unlock()
	to.RawQuery = back.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	op.mu.Lock()
	defer op.mu.Unlock()
	c, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	if !ok || token.S256(r.PostForm.Get("code_verifier")) != c.challenge {
		w.WriteHeader(http.StatusBadRequest)
		writeJSONTest(w, map[string]string{"error": "invalid_grant", "error_description": "the code or its verifier is wrong"})
		return
	}
	at := "UPSTREAM-AT-" + token.NewID()
	op.who = c.who
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300}
	op.issued = append(op.issued, at)
	if !op.GitHub {
		now := time.Now()
		op.sid = "sid-" + token.NewID()
		claims := map[string]any{"iss": cmpOr(op.IDIssuer, op.srv.URL), "sub": "sub-" + c.who.Username, "aud": c.clientID, "sid": op.sid,
			"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nonce": cmpOr(op.IDNonce, c.nonce),
			"email": c.who.Email, "email_verified": c.who.EmailVerified, "name": c.who.Username, "preferred_username": c.who.Username}
		if op.IDAud != nil {
			claims["aud"] = op.IDAud
		}
		if op.IDAzp != "" {
			claims["azp"] = op.IDAzp
		}
		id := signJWTNoT(op.key, claims)
		resp["id_token"] = id
		op.issued = append(op.issued, id)
	}
	writeJSONTest(w, resp)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func signJWTNoT(key *ecdsa.PrivateKey, claims any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		panic(err)
	}
	raw, _ := obj.CompactSerialize()
	return raw
}

// authorized returns the person whose token the request carries, if any.
func (op *fakeOP) authorized(r *http.Request) (upstreamUser, bool) {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	op.mu.Lock()
	defer op.mu.Unlock()
	for _, t := range op.issued {
		if ok && t == at {
			return op.who, true
		}
	}
	return upstreamUser{}, false
}

func (op *fakeOP) userinfo(w http.ResponseWriter, r *http.Request) {
	who, ok := op.authorized(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if op.GitHub {
		writeJSONTest(w, map[string]any{"id": 4200000 + len(who.Username), "login": who.Username, "name": strings.ToUpper(who.Username),
			"email": "public-" + who.Email})
		return
	}
	writeJSONTest(w, map[string]any{"sub": "sub-" + who.Username, "email": who.Email, "email_verified": who.EmailVerified})
}

func (op *fakeOP) emails(w http.ResponseWriter, r *http.Request) {
	who, ok := op.authorized(r)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	writeJSONTest(w, []map[string]any{{"email": "old-" + who.Email, "primary": false, "verified": true},
		{"email": who.Email, "primary": true, "verified": who.EmailVerified}})
}

// lastSID returns the sid of the latest ID token.
func (op *fakeOP) lastSID() string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.sid
}

// issuedTokens returns every token the fake upstream gave out.
func (op *fakeOP) issuedTokens() []string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]string(nil), op.issued...)
}
