package storagetest

import (
	"strconv"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Bench measures each store operation on the hot paths of the endpoints,
// one sub-benchmark per method. Every backend calls it from its tests with
// the constructor it gives Run; run with -benchmem.
func Bench(b *testing.B, newStore func(testing.TB) storage.Storage) {
	h := &bench{s: newStore(b), b: b}
	h.seed()
	h.reads()
	h.codes()
	h.tokens()
	h.throttle()
}

// bench holds one Bench run: the store, and a count of sub-benchmark runs
// that keeps the keys of each run fresh.
type bench struct {
	s    storage.Storage
	b    *testing.B
	runs int
}

func (h *bench) must(err error) {
	if err != nil {
		h.b.Fatal(err)
	}
}

// n returns a fresh key for the i-th iteration of op in this run (the
// testing package calls each sub-benchmark several times).
func (h *bench) n(op string, i int) string {
	return op + "-" + strconv.Itoa(h.runs) + "-" + strconv.Itoa(i)
}

func (h *bench) run(name string, fn func(b *testing.B)) {
	h.b.Run(name, func(b *testing.B) {
		h.runs++
		b.ReportAllocs()
		fn(b)
	})
}

// seed creates what the operations read: a user, a client, a consent, a
// grant, a session, a refresh token and a deny-listed jti.
func (h *bench) seed() {
	s, must := h.s, h.must
	must(s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", PasswordHash: "x", CreatedAt: now()}))
	must(s.CreateClient(ctx, storage.Client{ID: "notes", Name: "Notes", SecretHash: "h", RedirectURIs: []string{"https://notes.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "email"}, CreatedAt: now()}))
	must(s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "notes", Scopes: []string{"openid"}, GrantedAt: now(), UpdatedAt: now()}))
	must(s.CreateGrant(ctx, storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}))
	must(s.CreateSession(ctx, storage.Session{IDHash: "s1", UserID: "u1", AuthTime: now(), CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}))
	must(s.CreateRefreshToken(ctx, newRefresh("r1")))
	must(s.RevokeToken(ctx, "revoked-jti", now().Add(time.Hour)))
}

// reads benchmarks the reads of every request: client, user, session, consent (and saving one).
func (h *bench) reads() {
	s, must, run := h.s, h.must, h.run
	run("GetClient", func(b *testing.B) {
		for b.Loop() {
			_, err := s.GetClient(ctx, "notes")
			must(err)
		}
	})
	run("GetUser", func(b *testing.B) {
		for b.Loop() {
			_, err := s.GetUser(ctx, "u1")
			must(err)
		}
	})
	run("GetSession", func(b *testing.B) {
		for b.Loop() {
			_, err := s.GetSession(ctx, "s1")
			must(err)
		}
	})
	run("GetConsent", func(b *testing.B) {
		for b.Loop() {
			_, err := s.GetConsent(ctx, "u1", "notes")
			must(err)
		}
	})
	run("SaveConsent", func(b *testing.B) {
		for b.Loop() {
			must(s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "notes", Scopes: []string{"openid", "email"}, GrantedAt: now(), UpdatedAt: now()}))
		}
	})
}

// codes benchmarks the authorization endpoint's operations: requests and codes.
func (h *bench) codes() {
	s, must, n, run := h.s, h.must, h.n, h.run
	run("CreateAuthRequest", func(b *testing.B) {
		for i := range b.N {
			must(s.CreateAuthRequest(ctx, storage.AuthRequest{ID: n("req", i), ClientID: "notes", ExpiresAt: now().Add(time.Hour)}))
		}
	})
	run("GetAuthRequest", func(b *testing.B) {
		must(s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "req", ClientID: "notes", ExpiresAt: now().Add(time.Hour)}))
		for b.Loop() {
			_, err := s.GetAuthRequest(ctx, "req")
			must(err)
		}
	})
	run("CreateAuthCode", func(b *testing.B) {
		for i := range b.N {
			must(s.CreateAuthCode(ctx, newCode(n("code", i))))
		}
	})
	run("ConsumeAuthCode", func(b *testing.B) {
		for i := range b.N {
			must(s.CreateAuthCode(ctx, newCode(n("consume", i))))
		}
		b.ResetTimer()
		for i := range b.N {
			_, _, err := s.ConsumeAuthCode(ctx, n("consume", i), now())
			must(err)
		}
	})
}

// tokens benchmarks the token endpoint's operations: grants, refresh tokens, the deny-list.
func (h *bench) tokens() {
	s, must, n, run := h.s, h.must, h.n, h.run
	run("CreateGrant", func(b *testing.B) {
		for i := range b.N {
			must(s.CreateGrant(ctx, storage.Grant{ID: n("grant", i), ClientID: "notes", UserID: "u1", ExpiresAt: now().Add(time.Hour)}))
		}
	})
	run("GetGrant", func(b *testing.B) {
		for b.Loop() {
			_, err := s.GetGrant(ctx, "g1")
			must(err)
		}
	})
	run("GetRefreshToken", func(b *testing.B) {
		for b.Loop() {
			_, err := s.GetRefreshToken(ctx, "r1")
			must(err)
		}
	})
	run("RotateRefreshToken", func(b *testing.B) {
		must(s.CreateRefreshToken(ctx, newRefresh(n("rot", 0))))
		for i := range b.N {
			must(s.RotateRefreshToken(ctx, n("rot", i), newRefresh(n("rot", i+1)), now()))
		}
	})
	run("IsTokenRevoked", func(b *testing.B) {
		for b.Loop() {
			_, err := s.IsTokenRevoked(ctx, "live-jti")
			must(err)
		}
	})
	run("RevokeToken", func(b *testing.B) {
		for i := range b.N {
			must(s.RevokeToken(ctx, n("jti", i), now().Add(time.Hour)))
		}
	})
}

// throttle benchmarks the throttle's operations: failure counters and login attempts.
func (h *bench) throttle() {
	s, must, run := h.s, h.must, h.run
	run("AddFailure", func(b *testing.B) {
		for b.Loop() {
			_, err := s.AddFailure(ctx, "ip:192.0.2.1", time.Now(), time.Now().Add(time.Hour))
			must(err)
		}
	})
	run("Failures", func(b *testing.B) {
		for b.Loop() {
			_, _, err := s.Failures(ctx, "ip:192.0.2.1", time.Now())
			must(err)
		}
	})
	// One good login's throttle writes for one key: reserve, then succeed.
	run("ReserveAndEndAttempt", func(b *testing.B) {
		policy := storage.Throttle{Free: 5, Base: time.Second, Max: time.Hour}
		for b.Loop() {
			_, _, err := s.ReserveAttempt(ctx, "login-user:amal", time.Now(), policy)
			must(err)
			must(s.EndAttempt(ctx, "login-user:amal", storage.AttemptSucceeded))
		}
	})
}
