package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/console"
)

// selfSigned writes a self-signed certificate for the loopback addresses
// and its key to PEM files, and returns their paths and a pool that
// trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bawwab admin"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "admin.pem"), filepath.Join(dir, "admin.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// setCookie returns the Set-Cookie line of the cookie name in h, or "".
func setCookie(h http.Header, name string) string {
	for _, line := range h.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return line
		}
	}
	return ""
}

// TestConsoleAdminTLS: with admin_tls_cert and admin_tls_key, the admin
// listener serves TLS only (plain http is refused); the admin API answers
// over it; the console signs in through an https loopback callback,
// registered as such; its cookies are Secure, host-only and Path=/ with
// the __Host- prefix, and the session works over https.
func TestConsoleAdminTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	e := startWith(t, func(c *config.Config) { c.AdminTLSCert, c.AdminTLSKey = certFile, keyFile })
	if !strings.HasPrefix(e.AdminURL, "https://") {
		t.Fatalf("admin URL %s", e.AdminURL)
	}
	makeAdmin(t, e, e.UserID, true)
	trusting := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer trusting.CloseIdleConnections()

	// Plain http at the admin port: refused by the TLS listener.
	plain := strings.Replace(e.AdminURL, "https://", "http://", 1)
	if resp, err := http.Get(plain + "/console/login"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain http at the admin port: %d", resp.StatusCode)
		}
	}
	// An untrusted certificate: the client refuses it.
	if resp, err := http.Get(e.AdminURL + "/console/login"); err == nil {
		resp.Body.Close()
		t.Fatal("the default client trusted the self-signed certificate")
	}
	// The admin API, over TLS.
	req, _ := http.NewRequest("GET", e.AdminURL+"/admin/clients", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Transport: trusting}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, resp.StatusCode, http.StatusOK, "admin API over TLS", nil)

	b := e.browser()
	b.Transport = trusting
	start := b.get(e.AdminURL + "/console/login")
	u, err := url.Parse(start.Location)
	if err != nil || start.Status != http.StatusSeeOther {
		t.Fatalf("console login: %d %q", start.Status, start.Location)
	}
	au, _ := url.Parse(e.AdminURL)
	if got := u.Query().Get("redirect_uri"); got != "https://"+au.Host+"/console/callback" {
		t.Fatalf("console redirect_uri over TLS: %q", got)
	}
	login := setCookie(start.Header, console.HostPrefix+"bawwab_console_login")
	for _, want := range []string{"Path=/;", "Secure", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(login+";", want) || strings.Contains(login, "Domain=") {
			t.Fatalf("sign-in cookie %q lacks %s", login, want)
		}
	}
	c, err := e.Store.GetClient(context.Background(), console.ClientID)
	if err != nil || !slices.Contains(c.RedirectURIs, "https://127.0.0.1/console/callback") || c.Public {
		t.Fatalf("the console's client over TLS: %v %+v", err, c)
	}

	p, _ := b.consoleFlow("")
	wantStatus(t, p.Status, http.StatusOK, "console callback over TLS", p.Body)
	session := setCookie(p.Header, console.HostPrefix+console.SessionCookie)
	for _, want := range []string{"Path=/;", "Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(session+";", want) || strings.Contains(session, "Domain=") {
			t.Fatalf("session cookie %q lacks %s", session, want)
		}
	}
	if setCookie(p.Header, console.SessionCookie) != "" {
		t.Fatalf("an unprefixed session cookie over TLS: %v", p.Header.Values("Set-Cookie"))
	}
	if !b.consoleSession() {
		t.Fatal("no console session over TLS")
	}
}
