package factors

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/bawwab/bawwab/internal/storage"
)

const testIssuer = "http://localhost:8080"

var b64 = base64.RawURLEncoding

// softKey is a software authenticator holding one passkey: enough of
// CTAP2 to register (attestation "none") and to assert, with a signature
// counter the test can move back.
type softKey struct {
	t      *testing.T
	key    *ecdsa.PrivateKey
	id     []byte
	user   []byte // the user handle given at registration
	count  uint32
	flags  byte // UP|UV unless a test clears UV
	rpHash [32]byte
}

func newSoftKey(t *testing.T) *softKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &softKey{t: t, key: k, id: id, flags: 0x01 | 0x04, rpHash: sha256.Sum256([]byte("localhost"))}
}

func (k *softKey) authData(attested []byte) []byte {
	out := append([]byte{}, k.rpHash[:]...)
	flags := k.flags
	if attested != nil {
		flags |= 0x40
	}
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	return append(out, attested...)
}

func clientData(typ, challenge string) []byte {
	raw, _ := json.Marshal(map[string]string{"type": typ, "challenge": challenge, "origin": testIssuer})
	return raw
}

// register answers creation options.
func (k *softKey) register(options []byte) string {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		k.t.Fatal(err)
	}
	k.user, _ = b64.DecodeString(o.PublicKey.User.ID)
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{PublicKeyData: webauthncose.PublicKeyData{KeyType: 2, Algorithm: -7},
		Curve: 1, XCoord: k.key.X.FillBytes(make([]byte, 32)), YCoord: k.key.Y.FillBytes(make([]byte, 32))})
	if err != nil {
		k.t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID of none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.id)))
	attested = append(append(attested, k.id...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(attested)})
	if err != nil {
		k.t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64.EncodeToString(att)}})
	return string(raw)
}

// assert answers request options, moving the counter by step first.
func (k *softKey) assert(options []byte, step int) string {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		k.t.Fatal(err)
	}
	k.count = uint32(int(k.count) + step)
	cd := clientData("webauthn.get", o.PublicKey.Challenge)
	ad := k.authData(nil)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		k.t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(k.user)}})
	return string(raw)
}

func newPasskeys(t *testing.T, f *fixture) *Passkeys {
	t.Helper()
	p, err := NewPasskeys(f.store, f.totp.Sealer, testIssuer, "bawwab", f.clock)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// enrolPasskey registers k for the fixture's user.
func enrolPasskey(t *testing.T, p *Passkeys, f *fixture, k *softKey) *storage.Passkey {
	t.Helper()
	opts, state, err := p.BeginRegistration(ctx, f.user)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := p.FinishRegistration(ctx, f.user, state, k.register(opts), "Laptop")
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return pk
}

func TestPasskeyCeremonies(t *testing.T) {
	f := newFixture(t, 100)
	p := newPasskeys(t, f)
	k := newSoftKey(t)
	pk := enrolPasskey(t, p, f, k)
	if pk.UserID != f.user.ID || pk.ID != b64.EncodeToString(k.id) {
		t.Fatalf("registered %+v", pk)
	}
	// Registering the same authenticator again is refused (excluded, and
	// the store keeps credential ids unique).
	opts, state, _ := p.BeginRegistration(ctx, f.user)
	if _, err := p.FinishRegistration(ctx, f.user, state, k.register(opts), "again"); !errors.Is(err, ErrCeremony) {
		t.Fatalf("register twice: %v", err)
	}

	login := func(u *storage.User, step int) error {
		opts, state, err := p.BeginLogin(ctx, u)
		if err != nil {
			return err
		}
		_, _, err = p.FinishLogin(ctx, u, state, k.assert(opts, step))
		return err
	}
	tests := []struct {
		name string
		user *storage.User
		step int
		want error
	}{
		{"passwordless, counter grows", nil, 1, nil},
		{"second factor, counter grows", f.user, 5, nil},
		{"counter stays (cloned authenticator)", nil, 0, ErrCloned},
		{"counter goes back", f.user, -3, ErrCloned},
		{"counter grows again", nil, 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := login(tc.user, tc.step); tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Another user's second factor ceremony does not accept this passkey.
	other := &storage.User{ID: "u2", Username: "badr"}
	_ = f.store.CreateUser(ctx, *other)
	if _, _, err := p.BeginLogin(ctx, other); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("begin for a user without passkeys: %v", err)
	}
	// A response is accepted once: the challenge is spent.
	opts, state, _ = p.BeginLogin(ctx, nil)
	resp := k.assert(opts, 1)
	if _, _, err := p.FinishLogin(ctx, nil, state, resp); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.FinishLogin(ctx, nil, state, resp); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replayed response: %v", err)
	}
	// A sign-in state is not a registration state, nor another user's.
	opts, state, _ = p.BeginLogin(ctx, f.user)
	if _, err := p.FinishRegistration(ctx, f.user, state, k.register(opts), "x"); !errors.Is(err, ErrCeremony) {
		t.Fatalf("sign-in state used to register: %v", err)
	}
	// Without user verification, refused.
	k.flags = 0x01
	if err := login(nil, 1); !errors.Is(err, ErrCeremony) {
		t.Fatalf("no user verification: %v", err)
	}
	// An expired ceremony is refused.
	k.flags = 0x01 | 0x04
	opts, state, _ = p.BeginLogin(ctx, nil)
	f.advance(ceremonyTTL + 1)
	if _, _, err := p.FinishLogin(ctx, nil, state, k.assert(opts, 1)); !errors.Is(err, ErrCeremony) {
		t.Fatalf("expired ceremony: %v", err)
	}
}

// TestPasskeyRace: one assertion sent many times at once signs in once.
func TestPasskeyRace(t *testing.T) {
	f := newFixture(t, 100)
	p := newPasskeys(t, f)
	k := newSoftKey(t)
	enrolPasskey(t, p, f, k)
	opts, state, _ := p.BeginLogin(ctx, nil)
	resp := k.assert(opts, 1)
	var ok, refused int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			_, _, err := p.FinishLogin(ctx, nil, state, resp)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrReplayed), errors.Is(err, ErrCloned):
				refused++
			default:
				t.Errorf("finish: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || refused != 11 {
		t.Fatalf("accepted %d, refused %d", ok, refused)
	}
}
