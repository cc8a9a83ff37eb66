package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
)

// pemPair returns a self-signed certificate with serial and its key, in PEM.
func pemPair(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// write writes data to path with the modification time at.
func write(t *testing.T, path string, data []byte, at time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func serialOf(t *testing.T, cfg *tls.Config) int64 {
	t.Helper()
	c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// TestAdminTLS: no certificate, no TLS; a missing file or a key of
// another certificate stops the server at start; a renewed pair is served
// at the next handshake without a restart, and a renewal caught halfway
// (the new certificate beside the old key) keeps the pair loaded before.
func TestAdminTLS(t *testing.T) {
	if cfg, err := newAdminTLS(config.Default()); cfg != nil || err != nil {
		t.Fatalf("without a certificate: %v %v", cfg, err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "admin.pem"), filepath.Join(dir, "admin.key")
	cfg := config.Default()
	cfg.AdminTLSCert, cfg.AdminTLSKey = certFile, keyFile
	if _, err := newAdminTLS(cfg); err == nil {
		t.Fatal("missing files were accepted")
	}
	c1, k1 := pemPair(t, 1)
	c2, k2 := pemPair(t, 2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write(t, certFile, c1, t0)
	write(t, keyFile, k2, t0)
	if _, err := newAdminTLS(cfg); err == nil {
		t.Fatal("a key of another certificate was accepted")
	}
	write(t, keyFile, k1, t0)
	tc, err := newAdminTLS(cfg)
	if err != nil || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("newAdminTLS: %v %v", tc, err)
	}
	if s := serialOf(t, tc); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	write(t, certFile, c2, t0.Add(time.Hour)) // halfway: the new certificate, the old key
	if s := serialOf(t, tc); s != 1 {
		t.Fatalf("halfway through a renewal: serial %d, want 1", s)
	}
	write(t, keyFile, k2, t0.Add(time.Hour))
	if s := serialOf(t, tc); s != 2 {
		t.Fatalf("after the renewal: serial %d, want 2", s)
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if s := serialOf(t, tc); s != 2 {
		t.Fatalf("a file removed: serial %d, want 2", s)
	}
}
