// Package par implements pushed authorization requests (RFC 9126): the
// client sends the authorization request to /par over its authenticated
// back channel, gets a short-lived, single-use request_uri, and sends the
// browser to /authorize with only client_id and that request_uri.
//
// The package authenticates the client, checks a DPoP proof (RFC 9449
// §10.1) and stores the request; validating it as an authorization request
// is left to the caller's Validate, the same rules as at /authorize.
package par

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// RequestURIPrefix starts every request_uri bawwab issues (RFC 9126 §2.2).
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// TTL is how long a pushed request waits for the browser.
const TTL = 60 * time.Second

// idPrefix marks the stored ids of pushed requests, so that a request_uri
// never names a request that was not pushed.
const idPrefix = "par-"

// Endpoint serves /par.
type Endpoint struct {
	Store storage.Storage
	// Auth authenticates the client (RFC 9126 §2.1).
	Auth *clientauth.Authenticator
	// DPoP checks the DPoP proofs of pushed requests (RFC 9449 §10.1);
	// nil refuses them.
	DPoP   *dpop.Checker
	Issuer string
	Log    *slog.Logger
	Now    func() time.Time
	// RequestObject returns the parameters of a pushed request object
	// (RFC 9126 §3, package jar).
	RequestObject func(ctx context.Context, v url.Values) (url.Values, error)
	// Validate checks the parameters as an authorization request and
	// returns it, not yet stored.
	Validate func(ctx context.Context, v url.Values) (*storage.AuthRequest, error)
}

// Register adds POST /par to mux.
func (e *Endpoint) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /par", e.serve)
}

// Response is the answer to a pushed request (RFC 9126 §2.2).
type Response struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int    `json:"expires_in"`
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.DPoP.SetNonce(w) // RFC 9449 §8: the nonce for the next proof
	req, err := e.push(r)
	if err != nil {
		oautherr.WriteLogged(r.Context(), e.Log, w, "pushed authorization request refused", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(Response{RequestURI: RequestURIPrefix + req.ID, ExpiresIn: int(TTL.Seconds())})
}

func (e *Endpoint) push(r *http.Request) (*storage.AuthRequest, error) {
	ctx := r.Context()
	client, err := token.ClientForm(e.Auth, r)
	if err != nil {
		return nil, err
	}
	v := r.PostForm
	if v.Has("request_uri") {
		return nil, oautherr.New(oautherr.InvalidRequest, "request_uri may not be pushed (RFC 9126 section 2.1)")
	}
	// The authenticated client is the one asking (§2.1).
	v.Set("client_id", client.ID)
	if v.Has("request") { // a request object pushed (RFC 9126 §3)
		if v, err = e.RequestObject(ctx, v); err != nil {
			return nil, err
		}
	}
	if err := e.proof(r, v); err != nil {
		return nil, err
	}
	req, err := e.Validate(ctx, v)
	if err != nil {
		return nil, err
	}
	req.ID = idPrefix + token.NewID()
	req.ExpiresAt = req.CreatedAt.Add(TTL)
	if err := e.Store.CreateAuthRequest(ctx, *req); err != nil {
		return nil, oautherr.Wrap(err)
	}
	return req, nil
}

// proof checks the DPoP proof a pushed request may carry (RFC 9449
// §10.1): it is verified as at the token endpoint, and binds the code as
// dpop_jkt does, so that the code is redeemed only with a proof of the
// same key; a dpop_jkt sent beside it must name that key.
func (e *Endpoint) proof(r *http.Request, v url.Values) error {
	if len(r.Header.Values("DPoP")) == 0 {
		return nil
	}
	if e.DPoP == nil {
		return oautherr.New(dpop.InvalidProof, "this server takes no DPoP proofs at /par")
	}
	p, err := e.DPoP.Check(r.Context(), r, e.Issuer+"/par", "")
	if err != nil {
		return err
	}
	if jkt := v.Get("dpop_jkt"); jkt != "" && jkt != p.JKT {
		return oautherr.New(oautherr.InvalidRequest, "dpop_jkt is not the thumbprint of the DPoP proof's key (RFC 9449 section 10.1)")
	}
	v.Set("dpop_jkt", p.JKT)
	return nil
}

// Take returns the request pushed as requestURI by clientID, once: the
// stored request is deleted as it is taken (RFC 9126 §4), and an expired
// one is refused.
func (e *Endpoint) Take(ctx context.Context, clientID, requestURI string) (*storage.AuthRequest, error) {
	id, ok := strings.CutPrefix(requestURI, RequestURIPrefix)
	if !ok || !strings.HasPrefix(id, idPrefix) {
		return nil, oautherr.New(oautherr.InvalidRequest, "request_uri must be one this server issued at /par")
	}
	req, err := e.Store.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oautherr.New(oautherr.InvalidRequest, "the request_uri is unknown, used or expired; push the request again")
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	if req.ClientID != clientID {
		return nil, oautherr.New(oautherr.InvalidRequest, "the request_uri was pushed by another client")
	}
	if err := e.Store.DeleteAuthRequest(ctx, id); errors.Is(err, storage.ErrNotFound) {
		return nil, oautherr.New(oautherr.InvalidRequest, "the request_uri was used already; push the request again")
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	if !e.Now().Before(req.ExpiresAt) {
		return nil, oautherr.New(oautherr.InvalidRequest, "the request_uri has expired; push the request again")
	}
	return req, nil
}
