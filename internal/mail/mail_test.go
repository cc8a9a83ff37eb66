package mail_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		name, addr string
		ok         bool
	}{
		{"plain", "amal@example.com", true},
		{"empty", "", false},
		{"no at", "amal", false},
		{"display name", "Amal <amal@example.com>", false},
		{"two addresses", "a@example.com, b@example.com", false},
		{"line break", "amal@example.com\r\nBcc: eve@example.com", false},
		{"too long", strings.Repeat("a", 250) + "@example.com", false},
		{"internationalised domain", "amal@bücher.example", true},
		{"punycode domain", "amal@xn--bcher-kva.example", true},
		{"Arabic domain", "amal@مثال.example", true},
		{"invalid punycode", "amal@xn--a.example", false},
		{"disallowed code point", "amal@exa mple.com", false},
		{"underscore in domain", "amal@ex_ample.com", false},
		{"leading hyphen label", "amal@-example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := mail.CheckAddress(tc.addr); (err == nil) != tc.ok {
				t.Fatalf("CheckAddress(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}

func TestParseRelay(t *testing.T) {
	tests := []struct {
		raw     string
		want    mail.Relay
		wantErr bool
	}{
		{raw: "smtp://u:p@mail.example.com", want: mail.Relay{Scheme: "smtp", Host: "mail.example.com", Port: 587, Username: "u", Password: "p"}},
		{raw: "smtps://mail.example.com", want: mail.Relay{Scheme: "smtps", Host: "mail.example.com", Port: 465}},
		{raw: "smtp://mail.example.com:2525", want: mail.Relay{Scheme: "smtp", Host: "mail.example.com", Port: 2525}},
		{raw: "smtp+insecure://127.0.0.1:2525", want: mail.Relay{Scheme: "smtp+insecure", Host: "127.0.0.1", Port: 2525}},
		{raw: "smtp+insecure://mail.example.com", wantErr: true},
		{raw: "http://mail.example.com", wantErr: true},
		{raw: "smtp://mail.example.com:99999", wantErr: true},
		{raw: "smtp://mail.example.com/path", wantErr: true},
		{raw: "mail.example.com", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := mail.ParseRelay(tc.raw)
			if (err != nil) != tc.wantErr || !tc.wantErr && got != tc.want {
				t.Fatalf("ParseRelay(%q) = %+v, %v; want %+v, error %v", tc.raw, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestOutboxThroughOutage: a message written while the relay is down is
// delivered once it is back, once, with its text intact; a subject with
// a line break adds no header.
func TestOutboxThroughOutage(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	relay := mailtest.Start(t)
	relay.Username, relay.Password = "bawwab", "relay-secret"
	relay.Stop()
	r, err := mail.ParseRelay("smtp+insecure://bawwab:relay-secret@" + relay.Addr())
	if err != nil {
		t.Fatal(err)
	}
	failures := make(chan error, 10)
	s := &mail.Sender{Store: store, Transport: &mail.SMTP{Relay: r, From: "no-reply@bawwab.test", Timeout: 2 * time.Second},
		Log: slog.New(slog.DiscardHandler), Now: time.Now, Interval: 50 * time.Millisecond, Lease: 10 * time.Second,
		Batch: 10, Base: 100 * time.Millisecond, Max: 200 * time.Millisecond,
		OnResult: func(_ string, err error) {
			if err != nil {
				failures <- err
			}
		}}
	out := &mail.Outbox{Store: store, Now: time.Now, TTL: time.Hour, Kick: s.Kick}
	if err := out.Send(ctx, mail.Message{To: "eve <eve@example.com>", Subject: "x", Body: "x"}); err == nil {
		t.Fatal("a recipient with a display name was accepted")
	}
	body := "مرحبا Amal\nhttps://id.example/verify?token=abc\n"
	if err := out.Send(ctx, mail.Message{To: "amal@example.com", Subject: "Confirm\r\nBcc: eve@example.com", Body: body, Kind: "verify"}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Run(runCtx) }()
	defer func() { stop(); <-done }()
	select {
	case <-failures: // the relay is down: a delivery failed
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery was attempted while the relay was down")
	}
	relay.Restart()
	got := relay.Wait(t, 10*time.Second, mailtest.To("amal@example.com"))
	if len(got.To) != 1 {
		t.Fatalf("recipients %v, want amal only", got.To)
	}
	if got.Header("Bcc") != "" || !strings.HasPrefix(got.Header("Subject"), "Confirm") {
		t.Fatalf("subject %q, Bcc %q: a line break in the subject made a header", got.Header("Subject"), got.Header("Bcc"))
	}
	if b := strings.ReplaceAll(got.Body(), "\r\n", "\n"); !strings.Contains(b, body) {
		t.Fatalf("body %q, want %q", b, body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(relay.Messages()); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
}

// TestLogTransport: without a relay the body, links included, reaches the
// log only when asked (a development issuer).
func TestLogTransport(t *testing.T) {
	m := storage.Mail{ID: "m1", Kind: "reset", To: "amal@example.com", Subject: "Set a new password", Body: "https://id.example/reset/confirm?token=SECRET"}
	for _, body := range []bool{true, false} {
		var buf strings.Builder
		tr := mail.LogTransport{Log: slog.New(slog.NewTextHandler(&buf, nil)), Body: body}
		if err := tr.Deliver(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "SECRET") != body || !strings.Contains(buf.String(), "MAIL NOT SENT") {
			t.Fatalf("body %v: logged %s", body, buf.String())
		}
	}
}
