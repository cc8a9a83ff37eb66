package server

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/config"
)

// newAdminTLS is the TLS configuration of the admin listener when the
// settings name a certificate and key (admin_tls_cert, admin_tls_key); nil
// otherwise. The files are read at start, so that a wrong path or a key
// that does not match stops the server, and read again at a handshake
// after either file changed, so that a renewed certificate needs no
// restart.
func newAdminTLS(cfg config.Config) (*tls.Config, error) {
	if cfg.AdminTLSCert == "" {
		return nil, nil
	}
	r := &certFiles{cert: cfg.AdminTLSCert, key: cfg.AdminTLSKey}
	if _, err := r.get(nil); err != nil {
		return nil, fmt.Errorf("admin_tls_cert, admin_tls_key: %w", err)
	}
	return &tls.Config{GetCertificate: r.get, MinVersion: tls.VersionTLS12}, nil
}

// certFiles is a certificate kept in PEM files, loaded again when their
// modification times change.
type certFiles struct {
	cert, key string

	mu      sync.Mutex
	certMod time.Time
	keyMod  time.Time
	current *tls.Certificate
}

// get returns the certificate, loading it again when a file changed. A
// pair that fails to load (a renewal caught halfway: the new certificate
// with the old key) keeps the one loaded before, and is tried again at the
// next handshake.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	certMod, keyMod, err := modTimes(c.cert, c.key)
	if err == nil && (!certMod.Equal(c.certMod) || !keyMod.Equal(c.keyMod)) {
		var pair tls.Certificate
		if pair, err = tls.LoadX509KeyPair(c.cert, c.key); err == nil {
			c.current, c.certMod, c.keyMod = &pair, certMod, keyMod
		}
	}
	if c.current == nil {
		return nil, err
	}
	return c.current, nil
}

// modTimes returns the modification times of the two files.
func modTimes(a, b string) (time.Time, time.Time, error) {
	as, err := os.Stat(a)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	bs, err := os.Stat(b)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return as.ModTime(), bs.ModTime(), nil
}
