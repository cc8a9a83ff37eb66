package mailtest

import (
	"net/smtp"
	"strings"
	"testing"
	"time"
)

// TestServer: a message sent with the standard library's SMTP client
// arrives with its header decoded (RFC 2047) and its body; a stopped
// server refuses connections and takes mail again after Restart.
func TestServer(t *testing.T) {
	s := Start(t)
	msg := "From: bawwab@example.com\r\nTo: amal@example.com\r\nSubject: =?utf-8?q?=D9=85=D8=B1=D8=AD=D8=A8=D8=A7?=\r\n\r\nhello\r\n"
	if err := smtp.SendMail(s.Addr(), nil, "bawwab@example.com", []string{"amal@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := s.Wait(t, 5*time.Second, To("amal@example.com"))
	if got.Header("Subject") != "مرحبا" || !strings.Contains(got.Body(), "hello") {
		t.Fatalf("received subject %q body %q", got.Header("Subject"), got.Body())
	}
	s.Stop()
	if err := smtp.SendMail(s.Addr(), nil, "bawwab@example.com", []string{"basel@example.com"}, []byte(msg)); err == nil {
		t.Fatal("a stopped server took mail")
	}
	s.Restart()
	if err := smtp.SendMail(s.Addr(), nil, "bawwab@example.com", []string{"basel@example.com"}, []byte(msg)); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	s.Wait(t, 5*time.Second, To("basel@example.com"))
	if n := len(s.Messages()); n != 2 {
		t.Fatalf("%d messages kept, want 2", n)
	}
}
