package oautherr

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"short", "amal", "amal"},
		{"exactly 40 bytes", strings.Repeat("a", 40), strings.Repeat("a", 40)},
		{"long ASCII", strings.Repeat("a", 41), strings.Repeat("a", 40) + "..."},
		{"cut before a letter, not inside it", "a" + strings.Repeat("أ", 30), "a" + strings.Repeat("أ", 19) + "..."},
		{"invalid UTF-8 replaced", "am\xffal", "am\uFFFDal"},
		{"NUL replaced", "am\x00al", "am\uFFFDal"},
	} {
		got := Clip(tc.in)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("%s: Clip(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}
