package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/bawwab/bawwab/internal/storage"
)

// Relay URL schemes.
const (
	// SchemeSTARTTLS connects in plain text and requires STARTTLS
	// (RFC 3207) before anything is sent; port 587 by default.
	SchemeSTARTTLS = "smtp"
	// SchemeTLS speaks SMTP inside TLS from the start (implicit TLS,
	// RFC 8314 §3.3); port 465 by default.
	SchemeTLS = "smtps"
	// SchemeInsecure sends in plain text, to a relay on this machine
	// (loopback) only: a local MTA, or a test's.
	SchemeInsecure = "smtp+insecure"
)

// Relay is a parsed relay URL: scheme://[user[:password]@]host[:port].
type Relay struct {
	Scheme, Host       string
	Port               int
	Username, Password string
}

// ParseRelay reads a relay URL and checks it.
func ParseRelay(raw string) (Relay, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Relay{}, errors.New("must be a URL such as smtp://user:password@mail.example.com:587 (STARTTLS) or smtps://…:465 (TLS)")
	}
	r := Relay{Scheme: u.Scheme, Host: u.Hostname()}
	if r.Port, err = defaultPort(r.Scheme, r.Host); err != nil {
		return Relay{}, err
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Relay{}, fmt.Errorf("port %q is not a port number", p)
		}
		r.Port = n
	}
	if u.User != nil {
		r.Username = u.User.Username()
		r.Password, _ = u.User.Password()
	}
	return r, nil
}

// defaultPort is the submission port of scheme (RFC 8314 §3.3: 465 for
// implicit TLS, 587 for STARTTLS), refusing plain text to anything but a
// loopback relay.
func defaultPort(scheme, host string) (int, error) {
	switch scheme {
	case SchemeSTARTTLS:
		return 587, nil
	case SchemeTLS:
		return 465, nil
	case SchemeInsecure:
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return 0, errors.New("smtp+insecure sends passwords and links in plain text: it is allowed to a loopback relay only")
		}
		return 25, nil
	}
	return 0, fmt.Errorf("scheme %q must be smtp (STARTTLS), smtps (TLS) or smtp+insecure (loopback only)", scheme)
}

// SMTP delivers through a relay.
type SMTP struct {
	Relay Relay
	// From is the sender address of every message.
	From string
	// Timeout bounds connecting and each command; zero means 30 seconds.
	Timeout time.Duration
	// TLS, when set, replaces the default TLS configuration (which checks
	// the relay's certificate against the system's roots).
	TLS *tls.Config
}

// Deliver sends m.
func (s *SMTP) Deliver(ctx context.Context, m storage.Mail) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := CheckAddress(m.To); err != nil {
		return err
	}
	if err := msg.To(wireAddress(m.To)); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	msg.Subject(headerText(m.Subject))
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts := []gomail.Option{gomail.WithPort(s.Relay.Port), gomail.WithTimeout(timeout)}
	if s.TLS != nil {
		opts = append(opts, gomail.WithTLSConfig(s.TLS))
	}
	switch s.Relay.Scheme {
	case SchemeTLS:
		opts = append(opts, gomail.WithSSL())
	case SchemeInsecure:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.Relay.Username != "" {
		auth := gomail.SMTPAuthPlain
		if s.Relay.Scheme == SchemeInsecure {
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.Relay.Username), gomail.WithPassword(s.Relay.Password))
	}
	c, err := gomail.NewClient(s.Relay.Host, opts...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, msg)
}

// wireAddress is addr with its domain in ASCII (IDNA ToASCII), as a relay
// without SMTPUTF8 (RFC 6531) takes it; the local part stays as typed.
func wireAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	if d, ok := storage.NormalDomain(addr[at+1:]); ok {
		return addr[:at+1] + d
	}
	return addr
}
