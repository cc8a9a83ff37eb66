package clientauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/bawwab/bawwab/internal/storage"
)

// Sealer encrypts the secrets bawwab must keep readable — those of
// client_secret_jwt clients, which sign assertions with them — with
// AES-256-GCM under a key shared by the nodes through the store. Every
// other secret is kept only as a hash.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the sealing key from key material (any length).
func NewSealer(material []byte) (*Sealer, error) {
	k := sha256.Sum256(material)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// StoreSealer returns the sealer of every node sharing store: its key
// material is a secret kept in the store.
func StoreSealer(ctx context.Context, store storage.Storage) (*Sealer, error) {
	m, err := store.Secret(ctx, "client-secret-seal", []byte(rand.Text()+rand.Text()))
	if err != nil {
		return nil, err
	}
	return NewSealer(m)
}

// SealFor keeps c's new secret readable when c signs assertions with it
// (client_secret_jwt); for any other client it does nothing.
func SealFor(ctx context.Context, store storage.Storage, c *storage.Client, secret string) error {
	if c.AuthMethod != MethodSecretJWT || secret == "" {
		return nil
	}
	s, err := StoreSealer(ctx, store)
	if err != nil {
		return err
	}
	c.SecretSealed = s.Seal(secret)
	return nil
}

// Seal encrypts plain.
func (s *Sealer) Seal(plain string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), nil))
}

// Open decrypts what Seal made.
func (s *Sealer) Open(sealed string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("sealed secret is malformed")
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], nil)
	if err != nil {
		return "", errors.New("sealed secret does not open with this server's key")
	}
	return string(plain), nil
}
