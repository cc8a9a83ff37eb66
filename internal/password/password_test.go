package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	weak := Params{Memory: 8 * 1024, Time: 1, Threads: 1}
	h, err := Hash("correct horse", weak)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", h)
	}
	tests := []struct {
		name       string
		pw, hash   string
		want       Params
		wantErr    error
		wantRehash bool
	}{
		{"right password", "correct horse", h, weak, nil, false},
		{"right password, stronger params wanted", "correct horse", h, Default, nil, true},
		{"wrong password", "battery staple", h, weak, ErrMismatch, false},
		{"empty password", "", h, weak, ErrMismatch, false},
		{"not argon2id", "x", "$2y$10$abcdefghijklmnopqrstuv", weak, ErrMalformed, false},
		{"empty hash", "x", "", weak, ErrMalformed, false},
		{"absurd memory", "x", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", weak, ErrMalformed, false},
		{"bad base64", "x", "$argon2id$v=19$m=8192,t=1,p=1$!!$!!", weak, ErrMalformed, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rehash, err := Verify(tc.pw, tc.hash, tc.want)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if rehash != tc.wantRehash {
				t.Fatalf("rehash = %v, want %v", rehash, tc.wantRehash)
			}
		})
	}
}

func TestSaltsDiffer(t *testing.T) {
	p := Params{Memory: 8 * 1024, Time: 1, Threads: 1}
	a, _ := Hash("same", p)
	b, _ := Hash("same", p)
	if a == b {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestVerifyDummy(t *testing.T) {
	p := Params{Memory: 1024, Time: 1, Threads: 1}
	for range 2 {
		if err := VerifyDummy(p); err != ErrMismatch {
			t.Fatalf("VerifyDummy = %v, want ErrMismatch", err)
		}
	}
}

func TestCheck(t *testing.T) {
	for pw, ok := range map[string]bool{
		"correct horse battery":   true,
		"Tr0ub4dor&3":             true,
		"short":                   false,
		"password1":               false,
		"PassWord123":             false, // case-insensitive
		"iloveyou":                false,
		"aaaaaaaaaaaa":            false,
		"amal-haddad-1990":        false, // contains the user name
		strings.Repeat("ab", 200): false,
		"ünïcödé pässwörd":        true,
	} {
		if err := Check(pw, "amal-haddad"); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok=%v", pw, err, ok)
		}
	}
	if err := Check("amal-haddad", "amal-haddad"); err == nil {
		t.Error("password equal to the user name accepted")
	}
	if err := Check("abcdefghij", "a"); err != nil {
		t.Errorf("a one-letter user name rejects every password with that letter: %v", err)
	}
}
