// Package device is the home of the OAuth 2.0 Device Authorization Grant
// (RFC 8628): the device authorization endpoint (§3.1–3.2, [Endpoint]),
// its user codes, and the page where the user enters one (§3.3, [Page],
// device.go and page.go). After the code, the user signs in and answers
// the consent screen of the code flow (package authorize), whose answer
// [Page.Decide] records on the device code.
//
// The token grant (§3.4–3.5, urn:ietf:params:oauth:grant-type:device_code)
// stays in package token, in device_code.go: every grant lives there, one
// per file, behind one dispatcher that authenticates clients and writes
// errors once.
package device

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/ids"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// Path is where users enter their code (the verification_uri).
const Path = "/device"

// userCodeAlphabet has no vowels (no words) and no look-alike characters
// (RFC 8628 §6.1): 20 letters, 8 of them make 34.6 bits.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// NewUserCode returns a random user code, normalized (no separator).
func NewUserCode() string {
	b := make([]byte, 8)
	for i := range b {
		b[i] = userCodeAlphabet[randIndex(len(userCodeAlphabet))]
	}
	return string(b)
}

func randIndex(n int) int {
	var b [1]byte
	for {
		_, _ = rand.Read(b[:])
		if int(b[0]) < 256/n*n { // no modulo bias
			return int(b[0]) % n
		}
	}
}

// Normalize turns what a user typed into a stored user code: upper case,
// without spaces or dashes (RFC 8628 §6.1).
func Normalize(typed string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(typed) {
		if c != '-' && c != ' ' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Format shows a user code as the user reads it: XXXX-XXXX.
func Format(code string) string {
	if len(code) != 8 {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// Endpoint is POST /device_authorization.
type Endpoint struct {
	Auth     *clientauth.Authenticator
	Store    storage.Storage
	Scopes   *scope.Catalog
	Issuer   string
	Log      *slog.Logger
	Now      func() time.Time
	TTL      time.Duration // lifetime of device codes
	Interval int           // seconds between polls
}

// Response is the device authorization response (RFC 8628 §3.2).
type Response struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// Register adds the endpoint to mux.
func (e *Endpoint) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /device_authorization", e.serve)
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	resp, err := e.authorize(r)
	oautherr.Respond(r.Context(), e.Log, w, "device authorization failed", resp, err)
}

func (e *Endpoint) authorize(r *http.Request) (*Response, error) {
	ctx := r.Context()
	client, err := token.ClientForm(e.Auth, r)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(client.GrantTypes, granttype.DeviceCode) {
		return nil, oautherr.New(oautherr.UnauthorizedClient, "this client is not allowed the device_code grant")
	}
	asked, err := scope.Parse(r.PostForm.Get("scope"))
	if err != nil {
		return nil, oautherr.New(oautherr.InvalidScope, err.Error())
	}
	if len(asked) == 0 {
		return nil, oautherr.New(oautherr.InvalidScope, "scope is required")
	}
	for _, s := range asked {
		if _, ok := e.Scopes.Get(s); !ok || !slices.Contains(client.Scopes, s) {
			return nil, oautherr.Newf(oautherr.InvalidScope, "this client may not ask for scope %s", oautherr.Clip(s))
		}
	}
	now := e.Now()
	deviceCode := ids.NewOpaque()
	d := storage.DeviceCode{Hash: storage.Hash(deviceCode), ClientID: client.ID, Scopes: asked, Interval: e.Interval,
		CreatedAt: now, ExpiresAt: now.Add(e.TTL)}
	for range 5 { // a user code collision is rare; try again
		d.UserCode = NewUserCode()
		err = e.Store.CreateDeviceCode(ctx, d)
		if !errors.Is(err, storage.ErrAlreadyExists) {
			break
		}
	}
	if err != nil {
		return nil, oautherr.Wrap(err)
	}
	uri := e.Issuer + Path
	return &Response{DeviceCode: deviceCode, UserCode: Format(d.UserCode), VerificationURI: uri,
		VerificationURIComplete: uri + "?user_code=" + url.QueryEscape(Format(d.UserCode)),
		ExpiresIn:               int(e.TTL.Seconds()), Interval: e.Interval}, nil
}
