package storage

import (
	"errors"
	"slices"
	"testing"
)

// TestNormalEmail pins the one form in which addresses are compared and
// kept unique: the same mailbox in any spelling of its domain (Unicode,
// punycode, any case or width) is one key; an invalid domain keeps its
// lower-case form and is refused by CheckEmailDomain.
func TestNormalEmail(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		wantKeys       []string
		wantErr        error
	}{
		{"empty", "  ", "", nil, ErrBadEmailDomain},
		{"ascii", " Amal@Example.COM ", "amal@example.com", []string{"amal@example.com"}, nil},
		{"unicode domain", "user@bücher.example", "user@xn--bcher-kva.example", []string{"user@xn--bcher-kva.example", "user@bücher.example"}, nil},
		{"punycode domain", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example", []string{"user@xn--bcher-kva.example", "user@bücher.example"}, nil},
		{"upper-case unicode", "User@BÜCHER.Example", "user@xn--bcher-kva.example", []string{"user@xn--bcher-kva.example", "user@bücher.example"}, nil},
		{"upper-case punycode", "user@XN--BCHER-KVA.EXAMPLE", "user@xn--bcher-kva.example", []string{"user@xn--bcher-kva.example", "user@bücher.example"}, nil},
		{"full-width domain", "user@ｅｘａｍｐｌｅ.com", "user@example.com", []string{"user@example.com"}, nil},
		{"decomposed umlaut", "user@bu\u0308cher.example", "user@xn--bcher-kva.example", []string{"user@xn--bcher-kva.example", "user@bücher.example"}, nil},
		{"arabic domain", "user@مثال.example", "user@xn--mgbh0fb.example", []string{"user@xn--mgbh0fb.example", "user@مثال.example"}, nil},
		{"local part kept but lower-cased", "Ünïcode@example.com", "ünïcode@example.com", []string{"ünïcode@example.com"}, nil},
		{"at in local part", `"a@b"@bücher.example`, `"a@b"@xn--bcher-kva.example`, []string{`"a@b"@xn--bcher-kva.example`, `"a@b"@bücher.example`}, nil},
		{"invalid punycode", "user@XN--A.example", "user@xn--a.example", []string{"user@xn--a.example"}, ErrBadEmailDomain},
		{"underscore", "user@Ex_ample.com", "user@ex_ample.com", []string{"user@ex_ample.com"}, ErrBadEmailDomain},
		{"no at", "User", "user", []string{"user"}, ErrBadEmailDomain},
		{"empty domain", "user@", "user@", []string{"user@"}, ErrBadEmailDomain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormalEmail(tc.in); got != tc.want {
				t.Errorf("NormalEmail(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := EmailKeys(tc.in); !slices.Equal(got, tc.wantKeys) {
				t.Errorf("EmailKeys(%q) = %q, want %q", tc.in, got, tc.wantKeys)
			}
			if err := CheckEmailDomain(tc.in); !errors.Is(err, tc.wantErr) {
				t.Errorf("CheckEmailDomain(%q) = %v, want %v", tc.in, err, tc.wantErr)
			}
		})
	}
}
