package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Remote calls the admin API: of a running server over HTTP (NewRemote),
// or of a store directly, in process (Local). The CLI uses it either way,
// so that both paths are the same code.
type Remote struct {
	base  string
	token string
	http  *http.Client
	// Operator names who acts, for the audit log (OperatorHeader).
	Operator string
}

// NewRemote calls the admin API at base (e.g. http://127.0.0.1:8081).
func NewRemote(base, token string) *Remote {
	return &Remote{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// Local calls api in process, without a network.
func Local(api *API) *Remote {
	api.Token = "local"
	return &Remote{base: "http://local", token: "local", http: &http.Client{Transport: inProcess{api.Handler()}}}
}

// InProcess calls the admin API handler h in process with the admin
// token (the admin console: every action takes the API's own path).
func InProcess(h http.Handler, token string) *Remote {
	return &Remote{base: "http://local", token: token, http: &http.Client{Transport: inProcess{h}}}
}

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// Error is an error answer of the admin API.
type Error struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *Error) Error() string { return e.Description }

func (c *Remote) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.Operator != "" {
		req.Header.Set(OperatorHeader, c.Operator)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Description == "" {
			e.Description = fmt.Sprintf("admin API answered %s", resp.Status)
		}
		return e
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func (c *Remote) ListClients(ctx context.Context) (out []Client, err error) {
	return out, c.call(ctx, "GET", "/admin/clients", nil, &out)
}

func (c *Remote) CreateClient(ctx context.Context, in NewClient) (out CreatedClient, err error) {
	return out, c.call(ctx, "POST", "/admin/clients", in, &out)
}

func (c *Remote) GetClient(ctx context.Context, id string) (out Client, err error) {
	return out, c.call(ctx, "GET", "/admin/clients/"+url.PathEscape(id), nil, &out)
}

func (c *Remote) DeleteClient(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/admin/clients/"+url.PathEscape(id), nil, nil)
}

func (c *Remote) UpdateClient(ctx context.Context, id string, in NewClient) (out CreatedClient, err error) {
	return out, c.call(ctx, "PUT", "/admin/clients/"+url.PathEscape(id), in, &out)
}

func (c *Remote) ListClientGrants(ctx context.Context, id string) (out []ClientGrant, err error) {
	return out, c.call(ctx, "GET", "/admin/clients/"+url.PathEscape(id)+"/grants", nil, &out)
}

func (c *Remote) RevokeClientGrants(ctx context.Context, id string) (int, error) {
	var out struct {
		Revoked int `json:"revoked"`
	}
	return out.Revoked, c.call(ctx, "DELETE", "/admin/clients/"+url.PathEscape(id)+"/grants", nil, &out)
}

func (c *Remote) DeleteUser(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/admin/users/"+url.PathEscape(id), nil, nil)
}

func (c *Remote) SetPassword(ctx context.Context, id, password string) error {
	return c.call(ctx, "PUT", "/admin/users/"+url.PathEscape(id)+"/password", map[string]string{"password": password}, nil)
}

func (c *Remote) GetUser(ctx context.Context, id string) (out User, err error) {
	return out, c.call(ctx, "GET", "/admin/users/"+url.PathEscape(id), nil, &out)
}

func (c *Remote) UpdateUser(ctx context.Context, id string, in UserProfile) (out User, err error) {
	return out, c.call(ctx, "PUT", "/admin/users/"+url.PathEscape(id), in, &out)
}

func (c *Remote) ListUsers(ctx context.Context) (out []User, err error) {
	return out, c.call(ctx, "GET", "/admin/users", nil, &out)
}

func (c *Remote) CreateUser(ctx context.Context, in NewUser) (out User, err error) {
	return out, c.call(ctx, "POST", "/admin/users", in, &out)
}

func (c *Remote) ListGrants(ctx context.Context, userID string) (out []Grant, err error) {
	return out, c.call(ctx, "GET", "/admin/users/"+url.PathEscape(userID)+"/grants", nil, &out)
}

func (c *Remote) RevokeGrant(ctx context.Context, userID, clientID string) error {
	return c.call(ctx, "DELETE", "/admin/users/"+url.PathEscape(userID)+"/grants/"+url.PathEscape(clientID), nil, nil)
}

func (c *Remote) ListScopes(ctx context.Context) (out []Scope, err error) {
	return out, c.call(ctx, "GET", "/admin/scopes", nil, &out)
}

func (c *Remote) SaveScope(ctx context.Context, name string, in NewScope) (out Scope, err error) {
	return out, c.call(ctx, "PUT", "/admin/scopes/"+url.PathEscape(name), in, &out)
}

func (c *Remote) DeleteScope(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "/admin/scopes/"+url.PathEscape(name), nil, nil)
}

// Registration is the policy of dynamic client registration.
func (c *Remote) Registration(ctx context.Context) (out Registration, err error) {
	return out, c.call(ctx, "GET", "/admin/registration", nil, &out)
}

// ListRegistrationTokens lists the initial access tokens, without the tokens.
func (c *Remote) ListRegistrationTokens(ctx context.Context) (out []RegistrationToken, err error) {
	return out, c.call(ctx, "GET", "/admin/registration/tokens", nil, &out)
}

// CreateRegistrationToken issues an initial access token; the answer
// carries the token, this once.
func (c *Remote) CreateRegistrationToken(ctx context.Context, in NewRegistrationToken) (out RegistrationToken, err error) {
	return out, c.call(ctx, "POST", "/admin/registration/tokens", in, &out)
}

// RevokeRegistrationToken revokes the initial access token with this id.
func (c *Remote) RevokeRegistrationToken(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/admin/registration/tokens/"+url.PathEscape(id), nil, nil)
}

func (c *Remote) ListKeys(ctx context.Context) (out []Key, err error) {
	return out, c.call(ctx, "GET", "/admin/keys", nil, &out)
}

func (c *Remote) RotateKeys(ctx context.Context) (string, error) {
	var out struct {
		KID string `json:"kid"`
	}
	return out.KID, c.call(ctx, "POST", "/admin/keys/rotate", nil, &out)
}

func (c *Remote) ListAudit(ctx context.Context, f storage.AuditFilter) (out []Event, err error) {
	q := url.Values{}
	for k, v := range map[string]string{"user": f.UserID, "client": f.ClientID, "type": f.Type, "upstream": f.Upstream} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return out, c.call(ctx, "GET", "/admin/audit?"+q.Encode(), nil, &out)
}

func (c *Remote) Export(ctx context.Context) (out Backup, err error) {
	return out, c.call(ctx, "GET", "/admin/export", nil, &out)
}

func (c *Remote) Import(ctx context.Context, b Backup) (out Imported, err error) {
	return out, c.call(ctx, "POST", "/admin/import", b, &out)
}

func (c *Remote) userPath(id, rest string) string {
	return "/admin/users/" + url.PathEscape(id) + rest
}

func (c *Remote) Factors(ctx context.Context, userID string) (out Factors, err error) {
	return out, c.call(ctx, "GET", c.userPath(userID, "/factors"), nil, &out)
}

// ResetFactors removes every second factor of the user, or only the
// passkey with this id when passkeyID is set.
func (c *Remote) ResetFactors(ctx context.Context, userID, passkeyID string) error {
	path := c.userPath(userID, "/factors")
	if passkeyID != "" {
		path += "/passkeys/" + url.PathEscape(passkeyID)
	}
	return c.call(ctx, "DELETE", path, nil, nil)
}

func (c *Remote) DisableUser(ctx context.Context, userID, reason string) (out User, err error) {
	return out, c.call(ctx, "POST", c.userPath(userID, "/disable"), Reason{reason}, &out)
}

func (c *Remote) EnableUser(ctx context.Context, userID string) (out User, err error) {
	return out, c.call(ctx, "POST", c.userPath(userID, "/enable"), nil, &out)
}

// SetAdmin gives (on) or takes the user's admin role.
func (c *Remote) SetAdmin(ctx context.Context, userID string, on bool) (out User, err error) {
	method := "PUT"
	if !on {
		method = "DELETE"
	}
	return out, c.call(ctx, method, c.userPath(userID, "/admin"), nil, &out)
}

func (c *Remote) ResendVerification(ctx context.Context, userID string) error {
	return c.call(ctx, "POST", c.userPath(userID, "/verification"), nil, nil)
}

func (c *Remote) Unlock(ctx context.Context, userID string) error {
	return c.call(ctx, "POST", c.userPath(userID, "/unlock"), nil, nil)
}

// SignOut ends every session of the user.
func (c *Remote) SignOut(ctx context.Context, userID string) error {
	return c.call(ctx, "POST", c.userPath(userID, "/signout"), nil, nil)
}

func upstreamPath(id, rest string) string { return "/admin/upstreams/" + url.PathEscape(id) + rest }

func (c *Remote) ListUpstreams(ctx context.Context) (out []Upstream, err error) {
	return out, c.call(ctx, "GET", "/admin/upstreams", nil, &out)
}

func (c *Remote) GetUpstream(ctx context.Context, id string) (out Upstream, err error) {
	return out, c.call(ctx, "GET", upstreamPath(id, ""), nil, &out)
}

// CreateUpstream adds an upstream; adopt lets it take over the links of
// an earlier upstream of its id.
func (c *Remote) CreateUpstream(ctx context.Context, in NewUpstream, adopt bool) (out Upstream, err error) {
	path := "/admin/upstreams"
	if adopt {
		path += "?adopt_links=true"
	}
	return out, c.call(ctx, "POST", path, in, &out)
}

func (c *Remote) UpdateUpstream(ctx context.Context, id string, in NewUpstream) (out Upstream, err error) {
	return out, c.call(ctx, "PUT", upstreamPath(id, ""), in, &out)
}

func (c *Remote) DeleteUpstream(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", upstreamPath(id, ""), nil, nil)
}

// SetUpstreamEnabled enables or disables the upstream.
func (c *Remote) SetUpstreamEnabled(ctx context.Context, id string, on bool) (out Upstream, err error) {
	verb := "/disable"
	if on {
		verb = "/enable"
	}
	return out, c.call(ctx, "POST", upstreamPath(id, verb), nil, &out)
}

// UpstreamUsers returns a page of the users linked to the upstream.
func (c *Remote) UpstreamUsers(ctx context.Context, id, after string, limit int) (out UpstreamUsers, err error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return out, c.call(ctx, "GET", upstreamPath(id, "/users?"+q.Encode()), nil, &out)
}
