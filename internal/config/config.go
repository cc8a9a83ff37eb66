// Package config holds bawwab's settings and reads them from, in rising
// precedence: built-in defaults, an optional YAML file, BAWWAB_* environment
// variables, and command-line flags.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/upstream"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration.
type Config struct {
	Issuer   string
	Listen   string
	Database string // empty: SQLite file in DataDir; postgres://… for PostgreSQL
	DataDir  string
	Audience []string

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	GrantTTL        time.Duration
	IDTokenTTL      time.Duration
	CodeTTL         time.Duration
	SessionTTL      time.Duration
	DeviceCodeTTL   time.Duration
	AuditRetention  time.Duration

	// RefreshGrace is how long after a rotation the same client (and DPoP
	// key) may present the rotated refresh token again, for a response it
	// lost, and get a new rotation instead of revoking the grant; zero
	// turns it off. At most MaxRefreshGrace.
	RefreshGrace time.Duration

	// argon2id parameters of new password hashes (and of upgrades at login).
	PasswordMemoryKiB int
	PasswordTime      int
	PasswordThreads   int

	LogFormat string // text or json
	LogLevel  string // debug, info, warn, error

	// PprofListen, when set, is a loopback address serving net/http/pprof.
	PprofListen string
	// TrustedProxies are networks whose X-Forwarded-For is believed.
	TrustedProxies []string

	// AdminListen is the address of the admin API; AdminToken, when set,
	// enables it and is the Bearer token its requests must carry.
	AdminListen string
	AdminToken  string
	// AdminTLSCert and AdminTLSKey, when set, are PEM files of the
	// certificate and key with which the admin listener serves TLS.
	AdminTLSCert, AdminTLSKey string
	// ConsoleSecondFactor is who passes a second factor to reach the
	// admin console: enrolled (whoever set one up) or required (every
	// admin; who has none is refused).
	ConsoleSecondFactor string

	// Registration is off, open or token (RFC 7591); RegistrationToken is
	// an initial access token in token mode, beside those an operator
	// issues through the admin API.
	Registration      string
	RegistrationToken string

	// DPoPNonce on makes every DPoP proof carry a server nonce (RFC 9449 §8).
	DPoPNonce string

	// ClockLeeway is the clock skew forgiven in the iat, nbf and exp of
	// access tokens, client assertions and request objects; DPoPWindow is
	// how far a DPoP proof's iat may be from now (RFC 9449 §11.1).
	ClockLeeway time.Duration
	DPoPWindow  time.Duration

	// RefreshReuseHorizon is how long a rotated refresh token is kept to
	// detect its reuse (RFC 9700 §4.14.2); PruneInterval is how often
	// ended rows are deleted.
	RefreshReuseHorizon time.Duration
	PruneInterval       time.Duration

	// MaxConnections caps the open client connections; zero derives the
	// cap from the descriptor limit. DatabaseMaxConns caps the PostgreSQL
	// pool; zero means four per CPU.
	MaxConnections   int
	DatabaseMaxConns int
	// ShutdownTimeout bounds how long requests in flight may take to
	// finish after SIGTERM.
	ShutdownTimeout time.Duration
	// InsecureOutboundAllow lists hosts, IPs and networks (CIDR) that
	// bawwab may call for a client (jwks_uri, backchannel_logout_uri,
	// sector_identifier_uri) although they are internal, and over http
	// (package outbound). Empty: public https addresses only.
	InsecureOutboundAllow []string
	// AccessTokenAlg signs access tokens: ES256, RS256 or PS256.
	AccessTokenAlg string
	// RegistrationPKCE is the PKCE policy dynamically registered clients
	// may choose: required (PKCE always), or nonce_instead (a confidential
	// client may ask to send nonce instead, RFC 9700 §2.1.1).
	RegistrationPKCE string

	// MailRelay is the SMTP relay URL (package mail): smtp:// (STARTTLS
	// required), smtps:// (implicit TLS) or smtp+insecure:// (loopback
	// only), with user:password@ for authentication. Empty writes mails
	// to the log instead (development). MailFrom is the sender address.
	MailRelay string
	MailFrom  string
	// Signup is off, open (anyone may create an account) or invite (with
	// an invitation link an operator made).
	Signup string
	// EmailLinkTTL is how long an emailed verification or reset link
	// stays valid.
	EmailLinkTTL time.Duration
	// Upstreams are the identity providers people may sign in through
	// (package upstream).
	Upstreams []upstream.Config

	// SecondFactor is who passes a second factor at sign-in: off (nobody
	// unless a client, a scope or the request asks; the account pages
	// still ask whoever enrolled one), enrolled (whoever
	// enrolled one) or required (everyone; who has none cannot sign in
	// to an app until they set one up). SecondFactorScopes are the scopes
	// whose request needs a second factor whatever SecondFactor says.
	SecondFactor       string
	SecondFactorScopes []string
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Issuer:          "http://localhost:8080",
		Listen:          "127.0.0.1:8080",
		DataDir:         "bawwab-data",
		Audience:        []string{"api"},
		AccessTokenTTL:  10 * time.Minute,
		RefreshTokenTTL: 14 * 24 * time.Hour,
		GrantTTL:        90 * 24 * time.Hour,
		RefreshGrace:    30 * time.Second,
		IDTokenTTL:      time.Hour,
		CodeTTL:         time.Minute,
		SessionTTL:      12 * time.Hour,
		DeviceCodeTTL:   10 * time.Minute,
		AuditRetention:  365 * 24 * time.Hour,
		// OWASP's recommendation; see package password.
		PasswordMemoryKiB: 19 * 1024,
		PasswordTime:      2,
		PasswordThreads:   1,
		AdminListen:       "127.0.0.1:8081",
		Registration:      "off",
		DPoPNonce:         "off",
		ClockLeeway:       5 * time.Second,
		DPoPWindow:        60 * time.Second,
		// A day: a replay of a rotated token is detected for that long,
		// longer than any retry of a lost response.
		RefreshReuseHorizon: 24 * time.Hour,
		PruneInterval:       time.Minute,
		ShutdownTimeout:     10 * time.Second,
		AccessTokenAlg:      "ES256",
		RegistrationPKCE:    "required",
		Signup:              "off",
		EmailLinkTTL:        time.Hour,
		SecondFactor:        "enrolled",
		SecondFactorScopes:  []string{"payment"},
		ConsoleSecondFactor: "enrolled",
		LogFormat:           "text",
		LogLevel:            "info",
	}
}

// Field is one setting: its YAML key, flag name, environment variable and
// help text.
type Field struct {
	Key  string
	Help string
	// Kind is what the value is (KindStr, KindNum, KindDur, KindList), so
	// that a command line can type its flag; empty reads as KindStr.
	Kind Kind
	set  func(*Config, string) error
	get  func(*Config) string
}

// Kind is the type of a Field's value.
type Kind string

// The kinds of Field values.
const (
	KindStr  Kind = "str"  // text
	KindNum  Kind = "num"  // a whole number
	KindDur  Kind = "dur"  // a Go duration: 90s, 10m, 24h
	KindList Kind = "list" // comma-separated values
	KindYAML Kind = "yaml" // a YAML (or JSON) structure
)

// Flag is the command-line flag name of the field.
func (f Field) Flag() string { return strings.ReplaceAll(f.Key, "_", "-") }

// Env is the environment variable of the field.
func (f Field) Env() string { return "BAWWAB_" + strings.ToUpper(f.Key) }

// Get returns the field's value in c as a string.
func (f Field) Get(c *Config) string { return f.get(c) }

// Set parses s into the field of c.
func (f Field) Set(c *Config, s string) error {
	if err := f.set(c, s); err != nil {
		return fmt.Errorf("%s: %w", f.Key, err)
	}
	return nil
}

func str(key, help string, p func(*Config) *string) Field {
	return Field{Key: key, Help: help, Kind: KindStr,
		set: func(c *Config, s string) error { *p(c) = s; return nil },
		get: func(c *Config) string { return *p(c) }}
}

func num(key, help string, lo, hi int, p func(*Config) *int) Field {
	return Field{Key: key, Help: help, Kind: KindNum,
		set: func(c *Config, s string) error {
			n, err := strconv.Atoi(s)
			if err != nil || n < lo || n > hi {
				return fmt.Errorf("%q must be a whole number from %d to %d", s, lo, hi)
			}
			*p(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*p(c)) }}
}

func dur(key, help string, p func(*Config) *time.Duration) Field {
	return Field{Key: key, Help: help, Kind: KindDur,
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration such as 10m or 24h", s)
			}
			if d <= 0 {
				return errors.New("must be positive")
			}
			*p(c) = d
			return nil
		},
		get: func(c *Config) string { return p(c).String() }}
}

// MaxRefreshGrace caps RefreshGrace, as Amazon Cognito caps its rotation
// grace period: a longer window lets a stolen, already rotated refresh
// token be used for longer before reuse detection ends the grant.
const MaxRefreshGrace = 60 * time.Second

// Fields lists every setting.
var Fields = []Field{
	str("issuer", "issuer identifier: the public base URL of the server", func(c *Config) *string { return &c.Issuer }),
	str("listen", "address to listen on", func(c *Config) *string { return &c.Listen }),
	str("database", "PostgreSQL DSN (postgres://…); empty for embedded SQLite in data_dir", func(c *Config) *string { return &c.Database }),
	str("data_dir", "directory of the embedded SQLite database", func(c *Config) *string { return &c.DataDir }),
	{Key: "audience", Help: "comma-separated aud values of access tokens (resource servers)", Kind: KindList,
		set: func(c *Config, s string) error {
			c.Audience = nil
			for _, a := range strings.Split(s, ",") {
				if a = strings.TrimSpace(a); a != "" {
					c.Audience = append(c.Audience, a)
				}
			}
			if len(c.Audience) == 0 {
				return errors.New("needs at least one value")
			}
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.Audience, ",") }},
	dur("access_token_ttl", "lifetime of access tokens", func(c *Config) *time.Duration { return &c.AccessTokenTTL }),
	dur("refresh_token_ttl", "lifetime of one refresh token (renewed on each rotation)", func(c *Config) *time.Duration { return &c.RefreshTokenTTL }),
	dur("grant_ttl", "absolute lifetime of a refresh token chain", func(c *Config) *time.Duration { return &c.GrantTTL }),
	{Key: "refresh_grace", Help: "how long after a rotation the same client may retry with the rotated refresh token (0 to 60s; 0 turns it off)",
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration such as 30s", s)
			}
			if d < 0 || d > MaxRefreshGrace {
				return fmt.Errorf("must be between 0s and %v", MaxRefreshGrace)
			}
			c.RefreshGrace = d
			return nil
		},
		get: func(c *Config) string { return c.RefreshGrace.String() }},
	dur("id_token_ttl", "lifetime of ID tokens", func(c *Config) *time.Duration { return &c.IDTokenTTL }),
	dur("code_ttl", "lifetime of authorization codes", func(c *Config) *time.Duration { return &c.CodeTTL }),
	dur("session_ttl", "lifetime of a login session", func(c *Config) *time.Duration { return &c.SessionTTL }),
	dur("device_code_ttl", "how long a user has to enter a device's code (RFC 8628)", func(c *Config) *time.Duration { return &c.DeviceCodeTTL }),
	dur("audit_retention", "how long audit events are kept", func(c *Config) *time.Duration { return &c.AuditRetention }),
	num("password_memory_kib", "argon2id memory per password hash, in KiB", 8*1024, 4*1024*1024, func(c *Config) *int { return &c.PasswordMemoryKiB }),
	num("password_time", "argon2id passes per password hash", 1, 100, func(c *Config) *int { return &c.PasswordTime }),
	num("password_threads", "argon2id lanes per password hash", 1, 64, func(c *Config) *int { return &c.PasswordThreads }),
	str("log_format", "text or json", func(c *Config) *string { return &c.LogFormat }),
	str("log_level", "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
	{Key: "trusted_proxies", Help: "comma-separated networks (CIDR) of TLS-terminating proxies whose X-Forwarded-For names the client; empty trusts none", Kind: KindList,
		set: func(c *Config, s string) error {
			var list []string
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					list = append(list, p)
				}
			}
			if _, err := clientip.ParsePrefixes(list); err != nil {
				return fmt.Errorf("%q: %v", s, err)
			}
			c.TrustedProxies = list
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.TrustedProxies, ",") }},
	str("admin_listen", "address of the admin API (loopback unless you put TLS and a firewall in front)", func(c *Config) *string { return &c.AdminListen }),
	str("admin_token", "Bearer token of the admin API, at least 32 characters; empty disables the API", func(c *Config) *string { return &c.AdminToken }),
	str("admin_tls_cert", "PEM file of the certificate (with its chain) of the admin listener; with admin_tls_key, the admin API and console are served over TLS, the console's cookies are Secure with the __Host- prefix, and its callback is https", func(c *Config) *string { return &c.AdminTLSCert }),
	str("admin_tls_key", "PEM file of the private key of admin_tls_cert", func(c *Config) *string { return &c.AdminTLSKey }),
	str("console_second_factor", "who passes a second factor to reach the admin console, whatever second_factor says: enrolled (every admin who set one up) or required (every admin; who has none is refused and sent to the Security page)", func(c *Config) *string { return &c.ConsoleSecondFactor }),
	str("registration", "dynamic client registration (RFC 7591): off, open (anyone), or token (needs registration_token, or an initial access token issued with bawwab registration token create)", func(c *Config) *string { return &c.Registration }),
	str("registration_token", "an initial access token for registration: token, at least 32 characters; optional beside the tokens operators issue", func(c *Config) *string { return &c.RegistrationToken }),
	str("dpop_nonce", "on: DPoP proofs must carry a server nonce (RFC 9449 §8), against proofs made in advance; off: none", func(c *Config) *string { return &c.DPoPNonce }),
	dur("clock_leeway", "clock skew forgiven in iat, nbf and exp of access tokens, client assertions and request objects; keep node clocks synchronised (NTP)", func(c *Config) *time.Duration { return &c.ClockLeeway }),
	dur("dpop_proof_window", "how far a DPoP proof's iat may be from now, either way (RFC 9449 §11.1)", func(c *Config) *time.Duration { return &c.DPoPWindow }),
	dur("refresh_reuse_horizon", "how long a rotated refresh token is kept so that its replay revokes the grant (RFC 9700 §4.14.2); afterwards it is deleted and a replay is merely invalid", func(c *Config) *time.Duration { return &c.RefreshReuseHorizon }),
	dur("prune_interval", "how often expired and rotated rows are deleted, in small batches", func(c *Config) *time.Duration { return &c.PruneInterval }),
	num("max_connections", "cap on open client connections, past which new ones get 503 at once; 0 derives it from the descriptor limit (RLIMIT_NOFILE)", 0, 1<<20, func(c *Config) *int { return &c.MaxConnections }),
	num("database_max_conns", "cap on PostgreSQL connections of this node; 0 means four per CPU", 0, 10000, func(c *Config) *int { return &c.DatabaseMaxConns }),
	dur("shutdown_timeout", "how long requests in flight may take to finish after SIGTERM", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	{Key: "insecure_outbound_allow", Help: "comma-separated hosts, IPs or networks (CIDR) that bawwab may call for a client (jwks_uri, backchannel_logout_uri, sector_identifier_uri) or as an upstream (docs/federation.md) although they are loopback or private, and over http: for development and tests only; empty allows public https addresses only",
		set: func(c *Config, s string) error {
			var list []string
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					list = append(list, p)
				}
			}
			if _, err := outbound.ParseAllow(list); err != nil {
				return err
			}
			c.InsecureOutboundAllow = list
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.InsecureOutboundAllow, ",") }},
	str("access_token_alg", "signature algorithm of access tokens: ES256, RS256 or PS256 (your resource servers must accept it; the demo API takes ES256 only)", func(c *Config) *string { return &c.AccessTokenAlg }),
	str("registration_pkce", "required: every registered client uses PKCE; nonce_instead: a registering confidential client may ask to send nonce instead (RFC 9700 §2.1.1)", func(c *Config) *string { return &c.RegistrationPKCE }),
	str("mail_relay", "SMTP relay of outgoing mail: smtp://user:password@host:587 (STARTTLS required), smtps://…:465 (implicit TLS), or smtp+insecure://127.0.0.1:25 (plain text, loopback only); empty writes mails to the log instead, links included, on an http issuer (development only), and drops them on an https one", func(c *Config) *string { return &c.MailRelay }),
	str("mail_from", "sender address of outgoing mail; empty means no-reply@ and the issuer's host", func(c *Config) *string { return &c.MailFrom }),
	str("signup", "self sign-up: off, open (anyone may create an account), or invite (with an invitation link made through the admin API)", func(c *Config) *string { return &c.Signup }),
	dur("email_link_ttl", "how long an emailed email-verification or password-reset link stays valid", func(c *Config) *time.Duration { return &c.EmailLinkTTL }),
	str("second_factor", "who passes a second factor (an authenticator code or a passkey) at sign-in: off (only when a client, a scope or the app's acr_values asks; the account pages always ask whoever set one up), enrolled (whoever set one up), or required (everyone; who has none is refused and sent to the Security page)", func(c *Config) *string { return &c.SecondFactor }),
	{Key: "second_factor_scopes", Help: "comma-separated scopes whose request needs a second factor whatever second_factor says (a consent to payment asks for one); empty for none", Kind: KindList,
		set: func(c *Config, s string) error {
			c.SecondFactorScopes = nil
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.SecondFactorScopes = append(c.SecondFactorScopes, p)
				}
			}
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.SecondFactorScopes, ",") }},
	str("pprof_listen", "loopback address serving Go's profiler (net/http/pprof); empty to disable", func(c *Config) *string { return &c.PprofListen }),
	{Key: "upstreams", Kind: KindYAML, Help: "identity providers to sign in through (docs/federation.md): a list of {id, name: {en, ar}, type: oidc, oauth2, google or github, issuer (oidc), auth_url, token_url, userinfo_url, emails_url (oauth2), client_id, client_secret, scopes, claims: {subject, username, email, email_verified, name}, allowed_domains, jit (default true), enabled (default true), icon (google, github, an https URL or a data: URI)}; the value shown is the ids",
		set: setUpstreams, get: func(c *Config) string {
			ids := make([]string, len(c.Upstreams))
			for i, u := range c.Upstreams {
				ids[i] = u.ID
			}
			return strings.Join(ids, ",")
		}},
}

// setUpstreams reads the upstreams list from YAML (or JSON) text; an
// unknown member is an error.
func setUpstreams(c *Config, s string) error {
	var list []upstream.Config
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("not a list of upstreams: %v", err)
	}
	c.Upstreams = list
	return nil
}

func field(key string) (Field, bool) {
	for _, f := range Fields {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

// LoadFile applies a YAML file to c. Unknown keys are errors.
func LoadFile(c *Config, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return Load(c, raw, path)
}

// Load applies YAML text to c; name names it in errors.
func Load(c *Config, raw []byte, name string) error {
	path := name
	var m map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return fmt.Errorf("config: %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := field(k)
		if !ok {
			if near := nearestKey(k); near != "" {
				return fmt.Errorf("config: %s: unknown key %q (did you mean %q?)", path, k, near)
			}
			return fmt.Errorf("config: %s: unknown key %q", path, k)
		}
		s, set, err := fieldText(f, m[k])
		if err != nil {
			return fmt.Errorf("config: %s: %s: %w", path, k, err)
		}
		if !set {
			continue
		}
		if err := f.Set(c, s); err != nil {
			return fmt.Errorf("config: %s: %w", path, err)
		}
	}
	return nil
}

// fieldText is a YAML value as the text f.Set reads: a list joined with
// commas, a structure as YAML for a KindYAML field; set is false for a
// null value.
func fieldText(f Field, v any) (s string, set bool, err error) {
	switch v := v.(type) {
	case nil:
		return "", false, nil
	case []any, map[string]any:
		if f.Kind == KindYAML {
			raw, err := yaml.Marshal(v)
			return string(raw), true, err
		}
		if l, ok := v.([]any); ok {
			return joinList(l), true, nil
		}
		return "", false, errors.New("must be a value or a list")
	default:
		return fmt.Sprint(v), true, nil
	}
}

func joinList(v []any) string {
	parts := make([]string, len(v))
	for i, p := range v {
		parts[i] = fmt.Sprint(p)
	}
	return strings.Join(parts, ",")
}

// LoadEnv applies BAWWAB_* variables to c.
func LoadEnv(c *Config, getenv func(string) string) error {
	for _, f := range Fields {
		if v := getenv(f.Env()); v != "" {
			if err := f.Set(c, v); err != nil {
				return fmt.Errorf("config: %s: %w", f.Env(), err)
			}
		}
	}
	return nil
}

// CheckAddr reports whether addr is an address to listen on as net.Listen
// reads it: host:port or :port, the port a number (or service name).
func CheckAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port or :port, such as :8080 or 127.0.0.1:8080")
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("has no valid port: %q", port)
	}
	return nil
}

// Validate checks c and returns every problem found.
func (c *Config) Validate() error {
	var errs []error
	for _, check := range []func() []error{c.checkIssuer, c.checkLogsAndStore, c.checkListeners, c.checkProtocol, c.checkLifetimes} {
		errs = append(errs, check()...)
	}
	return errors.Join(errs...)
}

// checkIssuer checks the issuer identifier (RFC 8414 §2): an absolute URL
// without query, fragment or trailing slash, https outside localhost.
func (c *Config) checkIssuer() []error {
	u, err := url.Parse(c.Issuer)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return []error{fmt.Errorf("issuer %q must be an absolute URL", c.Issuer)}
	case u.RawQuery != "" || u.Fragment != "":
		return []error{fmt.Errorf("issuer %q must have no query or fragment (RFC 8414 §2)", c.Issuer)}
	case strings.HasSuffix(u.Path, "/"):
		return []error{fmt.Errorf("issuer %q must not end with a slash", c.Issuer)}
	case u.Scheme != "https" && !isLocal(u.Hostname()):
		return []error{fmt.Errorf("issuer %q must use https outside localhost (RFC 8414 §2)", c.Issuer)}
	}
	return nil
}

// checkLogsAndStore checks the log format and level, and the database URL.
func (c *Config) checkLogsAndStore() []error {
	var errs []error
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log_format %q must be text or json", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q must be debug, info, warn or error", c.LogLevel))
	}
	if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		errs = append(errs, fmt.Errorf("database must be a postgres:// URL, or empty for SQLite"))
	}
	return errs
}

// checkListeners checks the listen addresses: the admin API's only when
// it is on, the profiler's only on loopback.
func (c *Config) checkListeners() []error {
	var errs []error
	if err := CheckAddr(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q %v", c.Listen, err))
	}
	if err := CheckAddr(c.AdminListen); c.AdminToken != "" && err != nil {
		errs = append(errs, fmt.Errorf("admin_listen %q %v", c.AdminListen, err))
	}
	if (c.AdminTLSCert == "") != (c.AdminTLSKey == "") {
		errs = append(errs, errors.New("admin_tls_cert and admin_tls_key go together: set both or neither"))
	}
	if c.PprofListen != "" {
		host, _, err := net.SplitHostPort(c.PprofListen)
		if err != nil || !isLocal(host) {
			errs = append(errs, fmt.Errorf("pprof_listen %q must be a loopback host:port: the profiler exposes the process's memory", c.PprofListen))
		}
	}
	return errs
}

// checkProtocol checks the protocol choices (checkOAuth), sign-up and mail
// (checkAccounts), and the admin token's length.
func (c *Config) checkProtocol() []error {
	errs := append(c.checkOAuth(), c.checkAccounts()...)
	if err := upstream.Validate(c.Upstreams); err != nil {
		errs = append(errs, err)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 32 {
		errs = append(errs, errors.New("admin_token must have at least 32 characters (e.g. the output of: openssl rand -base64 32)"))
	}
	return errs
}

// checkOAuth checks DPoP nonces (RFC 9449 §8), dynamic registration (RFC
// 7591 §3) and its PKCE policy, and the access token algorithm.
func (c *Config) checkOAuth() []error {
	var errs []error
	if c.DPoPNonce != "on" && c.DPoPNonce != "off" {
		errs = append(errs, fmt.Errorf("dpop_nonce %q must be on or off", c.DPoPNonce))
	}
	switch c.Registration {
	case "off", "open":
	case "token":
		// Without a registration_token, only the initial access tokens
		// an operator issues (admin API, CLI, console) register clients.
		if c.RegistrationToken != "" && len(c.RegistrationToken) < 32 {
			errs = append(errs, errors.New("registration: token needs a registration_token of at least 32 characters, or none"))
		}
	default:
		errs = append(errs, fmt.Errorf("registration %q must be off, open or token", c.Registration))
	}
	switch c.AccessTokenAlg {
	case "ES256", "RS256", "PS256":
	default:
		errs = append(errs, fmt.Errorf("access_token_alg %q must be ES256, RS256 or PS256", c.AccessTokenAlg))
	}
	if c.RegistrationPKCE != "required" && c.RegistrationPKCE != "nonce_instead" {
		errs = append(errs, fmt.Errorf("registration_pkce %q must be required or nonce_instead", c.RegistrationPKCE))
	}
	return errs
}

// checkAccounts checks self sign-up and the mail relay its links go through.
func (c *Config) checkAccounts() []error {
	var errs []error
	switch c.SecondFactor {
	case "off", "enrolled", "required":
	default:
		errs = append(errs, fmt.Errorf("second_factor %q must be off, enrolled or required", c.SecondFactor))
	}
	if c.ConsoleSecondFactor != "enrolled" && c.ConsoleSecondFactor != "required" {
		errs = append(errs, fmt.Errorf("console_second_factor %q must be enrolled or required", c.ConsoleSecondFactor))
	}
	switch c.Signup {
	case "off", "open", "invite":
	default:
		errs = append(errs, fmt.Errorf("signup %q must be off, open or invite", c.Signup))
	}
	if c.MailRelay != "" {
		if _, err := mail.ParseRelay(c.MailRelay); err != nil {
			errs = append(errs, fmt.Errorf("mail_relay: %v", err))
		}
	}
	if c.MailFrom != "" && mail.CheckAddress(c.MailFrom) != nil {
		errs = append(errs, fmt.Errorf("mail_from %q must be one plain address such as no-reply@example.com", c.MailFrom))
	}
	return errs
}

// checkLifetimes checks lifetimes that depend on each other or on an RFC.
func (c *Config) checkLifetimes() []error {
	var errs []error
	if c.RefreshReuseHorizon <= c.RefreshGrace {
		errs = append(errs, fmt.Errorf("refresh_reuse_horizon %v must exceed refresh_grace %v: a retry within the grace needs the rotated token", c.RefreshReuseHorizon, c.RefreshGrace))
	}
	if c.CodeTTL > 10*time.Minute {
		errs = append(errs, fmt.Errorf("code_ttl %v is longer than the 10 minutes RFC 6749 §4.1.2 allows", c.CodeTTL))
	}
	return errs
}

func isLocal(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasSuffix(host, ".localhost")
}

// KeyRetention is how long a retired signing key stays published: past the
// longest lifetime of a token it signed, with an hour of margin.
func (c *Config) KeyRetention() time.Duration {
	return max(c.AccessTokenTTL, c.IDTokenTTL) + time.Hour
}

// PasswordParams are the argon2id parameters of new password hashes.
func (c *Config) PasswordParams() password.Params {
	return password.Params{Memory: uint32(c.PasswordMemoryKiB), Time: uint32(c.PasswordTime), Threads: uint8(c.PasswordThreads)}
}

// SQLitePath is the embedded database file.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "bawwab.db") }

// Warnings lists settings that are valid but unwise, each with the reason.
func (c *Config) Warnings() []string {
	return append(c.exposureWarnings(), c.policyWarnings()...)
}

// exposureWarnings are about what reaches the network: an http issuer
// (RFC 9700 §2.6), an admin API off loopback, internal addresses allowed
// for outbound requests.
func (c *Config) exposureWarnings() []string {
	var w []string
	u, err := url.Parse(c.Issuer)
	if err == nil && u.Scheme == "http" {
		w = append(w, fmt.Sprintf("issuer %s uses http: fine for development on one machine; production needs https (RFC 9700 §2.6)", c.Issuer))
		if host, _, err := net.SplitHostPort(c.Listen); err == nil && !isLocal(host) {
			w = append(w, fmt.Sprintf("listen %s accepts connections from other machines while the issuer is http: put TLS in front", c.Listen))
		}
	}
	if host, _, err := net.SplitHostPort(c.AdminListen); c.AdminToken != "" && c.AdminTLSCert == "" && (err != nil || !isLocal(host)) {
		w = append(w, fmt.Sprintf("admin_listen %s is not loopback and serves plain http: set admin_tls_cert and admin_tls_key, and keep a firewall in front", c.AdminListen))
	}
	if len(c.InsecureOutboundAllow) > 0 {
		w = append(w, "insecure_outbound_allow "+strings.Join(c.InsecureOutboundAllow, ",")+": clients may make bawwab call these internal addresses; for development only")
	}
	return w
}

// policyWarnings are about registration, the store, lifetimes and
// password hashing.
func (c *Config) policyWarnings() []string {
	var w []string
	if c.Registration == "open" {
		w = append(w, "registration: open lets anyone register a client; users still see and approve each one, but consider token")
	}
	if c.MailRelay == "" && c.Signup != "off" {
		w = append(w, "signup is on but mail_relay is empty: verification and password-reset mails are not sent (on an http issuer they are written to the log, links included); set a relay in production")
	}
	if c.Database == "" {
		w = append(w, "embedded SQLite in "+c.DataDir+": one node only; use database: postgres://… to run several")
	}
	if c.AccessTokenTTL > time.Hour {
		w = append(w, fmt.Sprintf("access_token_ttl %v: resource servers that validate tokens offline see a revocation only at expiry; keep it short", c.AccessTokenTTL))
	}
	if c.RefreshTokenTTL > c.GrantTTL {
		w = append(w, fmt.Sprintf("refresh_token_ttl %v exceeds grant_ttl %v, which bounds every refresh chain", c.RefreshTokenTTL, c.GrantTTL))
	}
	if c.SessionTTL > 7*24*time.Hour {
		w = append(w, fmt.Sprintf("session_ttl %v: long browser sessions widen the window of a stolen session cookie", c.SessionTTL))
	}
	if c.PasswordMemoryKiB < 19*1024 && c.PasswordTime < 2 {
		w = append(w, "argon2id parameters below OWASP's minimum (19 MiB, 2 passes): password hashes are cheaper to crack")
	}
	return w
}

// nearestKey is the setting whose name is within two edits of k, if any.
func nearestKey(k string) string {
	best, bestD := "", 3
	for _, f := range Fields {
		if d := EditDistance(k, f.Key); d < bestD {
			best, bestD = f.Key, d
		}
	}
	return best
}

// EditDistance is the Levenshtein distance of a and b: the number of
// single-byte insertions, deletions and substitutions between them. The
// did-you-mean of settings and of command-line flags rests on it.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Reference is the configuration reference in Markdown, generated from
// Fields (docs/config.md is this text; a test keeps it current).
func Reference() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

Generated from the code (` + "`internal/config`" + `); ` + "`go test ./internal/config`" + ` fails when
this file is stale, and ` + "`BAWWAB_UPDATE_DOCS=1 go test ./internal/config`" + ` rewrites it.

Each setting comes from, in increasing precedence: its default, the YAML
file given with ` + "`--config`" + ` (or ` + "`BAWWAB_CONFIG`" + `), its ` + "`BAWWAB_*`" + `
environment variable, and its command-line flag. Unknown keys in the file are
errors. ` + "`bawwab config check`" + ` validates the result, explains mistakes and
warns about unwise settings.

The flags belong to ` + "`bawwab serve`" + `, ` + "`migrate`" + ` and ` + "`config check`" + `, typed:
durations such as ` + "`90s`" + `, ` + "`10m`" + ` or ` + "`24h`" + `, whole numbers, comma-separated lists.
The admin commands take only ` + "`--data-dir`" + `, ` + "`--database`" + ` and ` + "`--admin-token`" + `
(with ` + "`--server`" + `).

| key (YAML) | flag | environment | default | meaning |
|---|---|---|---|---|
`)
	d := Default()
	for _, f := range Fields {
		def := f.Get(&d)
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | `%s` | `%s` | %s |\n", f.Key, f.Flag(), f.Env(), def, f.Help)
	}
	b.WriteString("\nExample file:\n\n```yaml\n")
	b.WriteString("issuer: https://id.example.com\nlisten: 0.0.0.0:8080\ndatabase: postgres://bawwab@db.internal/bawwab\naudience: [api]\naccess_token_ttl: 10m\nlog_format: json\n" +
		"upstreams:\n  - id: corp\n    name: {en: Example Corp, ar: إكزامبل كورب}\n    type: oidc\n    issuer: https://login.corp.example\n" +
		"    client_id: bawwab\n    client_secret: from-the-provider\n    allowed_domains: [corp.example]\n" +
		"  - id: github\n    name: {en: GitHub}\n    type: github\n    client_id: Iv1.0123456789abcdef\n    client_secret: from-github\n```\n")
	return b.String()
}

// MailSender is the From address of outgoing mail: MailFrom, or
// no-reply at the issuer's host.
func (c *Config) MailSender() string {
	if c.MailFrom != "" {
		return c.MailFrom
	}
	host := "localhost"
	if u, err := url.Parse(c.Issuer); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return "no-reply@" + host
}
