package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Provider is a configured upstream at run time: its endpoints (read from
// discovery once, and again after a failure) and the requests of the
// authorization code flow.
type Provider struct {
	Config
	// RedirectURL is bawwab's callback for this upstream.
	RedirectURL string
	// HTTP sends every request to the upstream (outbound's client).
	HTTP *http.Client
	Now  func() time.Time

	mu   sync.Mutex
	disc *discovered
}

// discovered is what an OpenID Connect upstream's metadata says.
type discovered struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// issParam: the upstream sends iss with every authorization response
	// (RFC 9207 §3).
	issParam bool
}

// NewProvider resolves c's preset and returns its provider; redirectBase
// is bawwab's issuer URL.
func NewProvider(c Config, redirectBase string, client *http.Client, now func() time.Time) *Provider {
	c = c.Resolved()
	return &Provider{Config: c, RedirectURL: redirectBase + "/upstream/" + c.ID + "/callback", HTTP: client, Now: now}
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, p.HTTP), p.HTTP)
}

// discover reads an OpenID Connect upstream's metadata, once it succeeded.
func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p.disc, nil
	}
	op, err := oidc.NewProvider(p.ctx(ctx), p.Issuer) // checks the metadata's issuer (Discovery §4.3)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: discovery: %w", p.ID, err)
	}
	var meta struct {
		IssParam bool     `json:"authorization_response_iss_parameter_supported"`
		JWKS     string   `json:"jwks_uri"`
		Algs     []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("upstream %s: discovery: %w", p.ID, err)
	}
	// The keys are read again for an unknown key at most once in a while
	// (keySet), not for every token anyone posts.
	keys := &keySet{uri: meta.JWKS, http: p.HTTP, now: p.Now}
	if keys.now == nil {
		keys.now = time.Now
	}
	d := &discovered{provider: op, issParam: meta.IssParam,
		verifier: oidc.NewVerifier(p.Issuer, keys, &oidc.Config{ClientID: p.ClientID, Now: p.Now, SupportedSigningAlgs: signingAlgs(meta.Algs)})}
	p.disc = d
	return d, nil
}

func (p *Provider) oauth2(ctx context.Context) (*oauth2.Config, *discovered, error) {
	conf := &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: p.RedirectURL, Scopes: p.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL}}
	if !p.OIDC() {
		return conf, nil, nil
	}
	d, err := p.discover(ctx)
	if err != nil {
		return nil, nil, err
	}
	conf.Endpoint = d.provider.Endpoint()
	return conf, d, nil
}

// AuthCodeURL is where the browser goes: the upstream's authorization
// endpoint with state, the S256 challenge of verifier and, for OpenID
// Connect, the nonce.
func (p *Provider) AuthCodeURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	conf, d, err := p.oauth2(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if d != nil {
		opts = append(opts, oidc.Nonce(nonce))
	}
	return conf.AuthCodeURL(state, opts...), nil
}

// Refusals of an authorization response; their text is for the audit log.
var (
	ErrIssuer = errors.New("upstream: the authorization response's iss is not the upstream's issuer (RFC 9207)")
	ErrNonce  = errors.New("upstream: the ID token's nonce is not the one sent")
	ErrNoID   = errors.New("upstream: the token response has no ID token")
	// ErrIDToken wraps an ID token that does not verify; ErrToken a
	// token request the upstream refused.
	ErrIDToken = errors.New("upstream: the ID token is invalid")
	ErrToken   = errors.New("upstream: the token request failed")
)

// Exchange redeems the code of an authorization response q (after its
// state was checked) with verifier, checks the response's iss and the ID
// token with its nonce, and reads the identity. The upstream's tokens end
// with this call.
func (p *Provider) Exchange(ctx context.Context, q url.Values, verifier, nonce string) (Identity, error) {
	conf, d, err := p.oauth2(ctx)
	if err != nil {
		return Identity{}, err
	}
	if d != nil {
		// RFC 9207 §2.4: a client that knows the upstream sends iss compares
		// it; one present is compared anyway, a mix-up defence at no cost.
		if iss, ok := q["iss"]; (ok || d.issParam) && (len(iss) != 1 || iss[0] != p.Issuer) {
			return Identity{}, ErrIssuer
		}
	}
	tok, err := conf.Exchange(p.ctx(ctx), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: upstream %s: %w", ErrToken, p.ID, err)
	}
	var id Identity
	if d != nil {
		id, err = p.fromIDToken(ctx, d, tok, nonce)
	} else {
		id, err = p.fromUserinfo(ctx, tok)
	}
	id.Upstream = p.ID
	return id, err
}

// fromIDToken verifies the ID token (OpenID Connect Core §3.1.3.7) and
// completes its claims from userinfo, whose sub must be the same (§5.3.4).
func (p *Provider) fromIDToken(ctx context.Context, d *discovered, tok *oauth2.Token, nonce string) (Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: %w", ErrIDToken, ErrNoID)
	}
	idt, err := d.verifier.Verify(p.ctx(ctx), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: upstream %s: %w", ErrIDToken, p.ID, err)
	}
	if idt.Nonce != nonce {
		return Identity{}, ErrNonce
	}
	var raws json.RawMessage
	if err := idt.Claims(&raws); err != nil {
		return Identity{}, err
	}
	claims, err := decode(raws)
	if err != nil {
		return Identity{}, err
	}
	if err := p.checkAzp(idt.Audience, claims["azp"]); err != nil {
		return Identity{}, err
	}
	if d.provider.UserInfoEndpoint() != "" {
		info, err := d.provider.UserInfo(p.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("upstream %s: userinfo: %w", p.ID, err)
		}
		if info.Subject != idt.Subject {
			return Identity{}, fmt.Errorf("upstream %s: userinfo names another subject than the ID token", p.ID)
		}
		var more json.RawMessage
		if err := info.Claims(&more); err == nil {
			extra, _ := decode(more)
			for k, v := range extra {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	id, err := Map(claims, p.Claims)
	id.SID, _ = claims["sid"].(string)
	return id, err
}

// checkAzp holds an ID token to OpenID Connect Core §3.1.3.7 steps 4
// and 5: with several audiences it must name bawwab's client id as its
// azp, and an azp present must be bawwab's; otherwise it was made for
// another client of the upstream.
func (p *Provider) checkAzp(aud []string, azp any) error {
	switch got, present := azp.(string); {
	case azp != nil && (!present || got != p.ClientID):
		return fmt.Errorf("%w: upstream %s: azp is another client's", ErrIDToken, p.ID)
	case len(aud) > 1 && azp == nil:
		return fmt.Errorf("%w: upstream %s: several audiences and no azp", ErrIDToken, p.ID)
	}
	return nil
}

// fromUserinfo reads a plain OAuth 2.0 upstream's userinfo answer and, when
// configured, its list of verified addresses (GitHub's /user/emails).
func (p *Provider) fromUserinfo(ctx context.Context, tok *oauth2.Token) (Identity, error) {
	claims, err := p.getJSON(ctx, tok, p.UserinfoURL)
	if err != nil {
		return Identity{}, err
	}
	id, err := Map(claims.(map[string]any), p.Claims)
	if err != nil || p.EmailsURL == "" {
		return id, err
	}
	list, err := p.getJSON(ctx, tok, p.EmailsURL)
	if err != nil {
		return Identity{}, err
	}
	id.Email, id.EmailVerified = primaryEmail(list)
	return id, nil
}

// primaryEmail picks from a GitHub-shaped list of addresses ([{email,
// primary, verified}]) the primary one and whether it is verified.
func primaryEmail(v any) (string, bool) {
	list, _ := v.([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		if primary, _ := m["primary"].(bool); primary {
			verified, _ := m["verified"].(bool)
			if email := address(text(m["email"])); email != "" {
				return email, verified
			}
			return "", false
		}
	}
	return "", false
}

func (p *Provider) getJSON(ctx context.Context, tok *oauth2.Token, uri string) (any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	resp, err := p.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", p.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upstream %s: %s answered %s", p.ID, uri, resp.Status)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("upstream %s: %s: %w", p.ID, uri, err)
	}
	if _, ok := v.(map[string]any); !ok && uri == p.UserinfoURL {
		return nil, fmt.Errorf("upstream %s: %s answered no JSON object", p.ID, uri)
	}
	return v, nil
}

func decode(raw []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return m, dec.Decode(&m)
}
