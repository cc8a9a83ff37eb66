package storage

import (
	"errors"
	"testing"
)

// TestUsernameKey pins which names are one (the same key) and which
// names are refused outright (CheckUsername); a refused name's key is
// whatever it is, since no account gets it.
func TestUsernameKey(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantKey string
		wantErr           error
	}{
		{"ascii", "admin", "admin", nil},
		{"upper case", "Admin", "admin", nil},
		{"full width", "ａｄｍｉｎ", "admin", nil},
		{"full width upper case", "ＡＤＭＩＮ", "admin", nil},
		{"sharp s folds", "Straße", "strasse", nil},
		{"ligature", "ﬁnn", "finn", nil},
		{"decomposed", "jose\u0301", "josé", nil},
		{"composed", "José", "josé", nil},
		{"Arabic", "أمل", "أمل", nil},
		{"Arabic with a digit and a dot", "أمل.2", "أمل.2", nil},
		{"email-like", "Amal@Example.com", "amal@example.com", nil},
		{"empty", "", "", ErrBadUsername},
		{"space", "a b", "a b", ErrBadUsername},
		{"tab", "a\tb", "a\tb", ErrBadUsername},
		{"no-break space", "a\u00a0b", "a b", ErrBadUsername},
		{"ideographic space", "a\u3000b", "a b", ErrBadUsername},
		{"zero-width space", "ad\u200bmin", "ad\u200bmin", ErrBadUsername},
		{"zero-width joiner", "ad\u200dmin", "ad\u200dmin", ErrBadUsername},
		{"soft hyphen", "ad\u00admin", "ad\u00admin", ErrBadUsername},
		{"bidi override", "\u202enimda", "\u202enimda", ErrBadUsername},
		{"byte order mark", "\ufeffadmin", "\ufeffadmin", ErrBadUsername},
		{"variation selector", "admin\ufe0f", "admin\ufe0f", ErrBadUsername},
		{"Hangul filler", "admin\u3164", "admin\u1160", ErrBadUsername},
		{"blank braille", "admin\u2800", "admin\u2800", ErrBadUsername},
		{"control", "admin\x01", "admin\x01", ErrBadUsername},
		{"DEL", "admin\x7f", "admin\x7f", ErrBadUsername},
		{"private use", "admin\ue000", "admin\ue000", ErrBadUsername},
		{"invalid UTF-8", "admin\xff", "admin\xff", ErrBadUsername},
		{"Cyrillic a among Latin", "\u0430dmin", "\u0430dmin", ErrBadUsername},
		{"Greek omicron among Latin", "r\u03bfot", "r\u03bfot", ErrBadUsername},
		{"all Cyrillic", "админ", "админ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := UsernameKey(tc.in); got != tc.wantKey {
				t.Errorf("UsernameKey(%q) = %q, want %q", tc.in, got, tc.wantKey)
			}
			if err := CheckUsername(tc.in); !errors.Is(err, tc.wantErr) {
				t.Errorf("CheckUsername(%q) = %v, want %v", tc.in, err, tc.wantErr)
			}
		})
	}
}
