package token

import (
	"context"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// Grant is one grant type of the token endpoint.
type Grant interface {
	// Type is the grant_type value (RFC 6749 §4).
	Type() string
	// Exchange turns an authenticated request into tokens. req is all
	// the grant decides on; ctx carries cancellation only. Errors are
	// *oautherr.Error values; the endpoint writes them.
	Exchange(ctx context.Context, req *Request) (*Response, error)
}

// Endpoint is the token endpoint: it parses the request, authenticates the
// client, checks the client may use the grant type, and dispatches.
type Endpoint struct {
	Auth *clientauth.Authenticator
	Log  *slog.Logger
	// OnIssued, when set, is told the grant type of each token response.
	OnIssued func(grantType string)
	// DPoP checks DPoP proofs (RFC 9449); URL is the endpoint's own.
	DPoP   *dpop.Checker
	URL    string
	grants map[string]Grant
}

// NewEndpoint returns a token endpoint serving the given grants.
func NewEndpoint(auth *clientauth.Authenticator, log *slog.Logger, grants ...Grant) *Endpoint {
	e := &Endpoint{Auth: auth, Log: log, grants: map[string]Grant{}}
	for _, g := range grants {
		e.grants[g.Type()] = g
	}
	return e
}

// GrantTypes lists the served grant types.
func (e *Endpoint) GrantTypes() []string {
	var out []string
	for _, t := range []string{"authorization_code", "refresh_token", "client_credentials", DeviceCodeGrantType, TokenExchangeGrantType} {
		if _, ok := e.grants[t]; ok {
			out = append(out, t)
		}
	}
	return out
}

// Register adds POST /token to mux.
func (e *Endpoint) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /token", e.serve)
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var resp *Response
	var client *storage.Client
	proof, err := e.DPoP.Check(ctx, r, e.URL, "")
	e.DPoP.SetNonce(w)
	if err == nil {
		resp, client, err = e.exchange(ctx, r, proof)
	}
	if err != nil {
		oe := oautherr.From(err)
		level := slog.LevelInfo
		switch oe.Code {
		case oautherr.ServerError:
			level = slog.LevelError
		case oautherr.TemporarilyUnavailable:
			level = slog.LevelWarn
		}
		e.Log.Log(ctx, level, "token request failed", "grant_type", r.PostForm.Get("grant_type"), "client_id", clientID(client, r), "error", oe.Code, "err", err)
		oautherr.Write(w, oe, "bawwab")
		return
	}
	if e.OnIssued != nil {
		e.OnIssued(r.PostForm.Get("grant_type"))
	}
	oautherr.WriteJSON(w, resp)
}

func clientID(c *storage.Client, r *http.Request) string {
	if c != nil {
		return c.ID
	}
	return r.PostForm.Get("client_id")
}

// exchange reads r into a Request, once, and hands it to the grant of its
// grant_type: proof is r's verified DPoP proof, or nil.
func (e *Endpoint) exchange(ctx context.Context, r *http.Request, proof *dpop.Proof) (*Response, *storage.Client, error) {
	if err := ParseForm(r); err != nil {
		return nil, nil, err
	}
	gt := r.PostForm.Get("grant_type")
	if gt == "" {
		return nil, nil, oautherr.New(oautherr.InvalidRequest, "grant_type is required")
	}
	client, err := e.Auth.Authenticate(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	g, ok := e.grants[gt]
	if !ok {
		return nil, client, oautherr.Newf(oautherr.UnsupportedGrantType, "grant_type %q is not supported; use %s", oautherr.Clip(gt), strings.Join(e.GrantTypes(), ", "))
	}
	if !slices.Contains(client.GrantTypes, gt) {
		return nil, client, oautherr.Newf(oautherr.UnauthorizedClient, "this client is not allowed the %s grant", gt)
	}
	if err := needProof(client, proof); err != nil {
		return nil, client, err
	}
	resp, err := g.Exchange(ctx, &Request{GrantType: gt, Form: r.PostForm, Client: client, Proof: proof})
	return resp, client, err
}

// errProofRequired answers a token request without a DPoP proof from a
// client that must send one. RFC 9449 §5.2 names no error code for it:
// invalid_dpop_proof is for a proof that is there and wrong (§5), so this
// is RFC 6749 §5.2's invalid_request, a request missing what it needs.
var errProofRequired = oautherr.New(oautherr.InvalidRequest,
	"this client must send a DPoP proof (the DPoP header, RFC 9449) with every token request: it is registered with dpop_bound_access_tokens")

// needProof refuses a token request of a client registered with
// dpop_bound_access_tokens that carries no DPoP proof. RFC 9449 §5.2: "If
// true, the authorization server MUST reject token requests from the
// client that do not contain the DPoP header." It holds for every grant
// type, so that none of the client's access tokens is a bearer token.
func needProof(client *storage.Client, proof *dpop.Proof) error {
	if client.DPoPBound && proof == nil {
		return errProofRequired
	}
	return nil
}

// ClientForm parses a back-channel request (token, introspection,
// revocation, device authorization, PAR) and authenticates its client.
func ClientForm(auth *clientauth.Authenticator, r *http.Request) (*storage.Client, error) {
	if err := ParseForm(r); err != nil {
		return nil, err
	}
	return auth.Authenticate(r.Context(), r)
}

// MaxFormBytes bounds the body of token, revocation and introspection requests.
const MaxFormBytes = 64 << 10

// repeatable are the parameters an RFC lets appear more than once:
// audience (RFC 8693 §2.1) and resource (RFC 8707 §2).
var repeatable = []string{"audience", "resource"}

// ParseForm parses an application/x-www-form-urlencoded POST body (RFC 6749
// §3.2), refusing repeated parameters (§3.2: "MUST NOT be included more
// than once", save those of repeatable) and query parameters.
func ParseForm(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return oautherr.New(oautherr.InvalidRequest, "the request body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		return oautherr.New(oautherr.InvalidRequest, "the request body is not a valid form or is too large").WithCause(err)
	}
	for k, v := range r.PostForm {
		if len(v) > 1 && !slices.Contains(repeatable, k) {
			return oautherr.Newf(oautherr.InvalidRequest, "parameter %s appears more than once", oautherr.Clip(k))
		}
	}
	return nil
}
