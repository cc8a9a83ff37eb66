package signin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// ProgressCookie is the cookie of an unfinished sign-in.
const ProgressCookie = "bawwab_signin"

// CookieProgress keeps an unfinished sign-in in a cookie that the server
// signs with HMAC-SHA256: who was identified and what was proved, for one
// authorization request, for TTL. The cookie grants nothing by itself:
// the pipeline reads it only to ask for the next step, and a session
// starts only when every step the policy needs was passed.
type CookieProgress struct {
	// Key signs the cookie; share it between nodes (storage's Secret).
	Key []byte
	// Secure marks the cookie Secure (an https issuer).
	Secure bool
	// TTL bounds the time between two steps.
	TTL time.Duration
	Now func() time.Time
	// Users finds the identified user again.
	Users interface {
		GetUser(ctx context.Context, id string) (*storage.User, error)
	}
}

var _ Progress = (*CookieProgress)(nil)

type progressState struct {
	Req    string  `json:"req"`
	User   string  `json:"user"`
	Proved []Proof `json:"proved"`
	Exp    int64   `json:"exp"`
}

func (c *CookieProgress) mac(payload string) string {
	m := hmac.New(sha256.New, c.Key)
	m.Write([]byte("signin\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func requestID(a *Attempt) string {
	if a.Request == nil {
		return ""
	}
	return a.Request.ID
}

// Load restores the unfinished sign-in of the browser for a.Request. A
// cookie that is forged, expired, or for another request counts as none.
func (c *CookieProgress) Load(ctx context.Context, r *http.Request, a *Attempt) error {
	ck, err := r.Cookie(ProgressCookie)
	if err != nil {
		return nil
	}
	payload, mac, ok := strings.Cut(ck.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(c.mac(payload))) {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	var st progressState
	if err != nil || json.Unmarshal(raw, &st) != nil {
		return nil
	}
	if !c.Now().Before(time.Unix(st.Exp, 0)) || st.Req != requestID(a) || st.User == "" {
		return nil
	}
	u, err := c.Users.GetUser(ctx, st.User)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	a.User, a.Proved = u, st.Proved
	return nil
}

// Save keeps a.User and a.Proved in the cookie.
func (c *CookieProgress) Save(_ context.Context, w http.ResponseWriter, _ *http.Request, a *Attempt) error {
	if a.User == nil {
		return errors.New("signin: nothing to keep before a first factor")
	}
	raw, err := json.Marshal(progressState{Req: requestID(a), User: a.User.ID, Proved: a.Proved, Exp: c.Now().Add(c.TTL).Unix()})
	if err != nil {
		return err
	}
	payload := base64.RawURLEncoding.EncodeToString(raw)
	c.set(w, payload+"."+c.mac(payload), int(c.TTL.Seconds()))
	return nil
}

// Clear removes the cookie.
func (c *CookieProgress) Clear(_ context.Context, w http.ResponseWriter, _ *http.Request) error {
	c.set(w, "", -1)
	return nil
}

func (c *CookieProgress) set(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: ProgressCookie, Value: value, Path: "/login", MaxAge: maxAge,
		HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteLaxMode})
}
