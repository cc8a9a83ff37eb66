package storage

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// UsernameKey is the form in which usernames are kept unique: NFKC, case
// folded, NFKC again (Unicode's NFKC_Casefold, UAX #15 and §3.13), so
// that admin, Admin and ａｄｍｉｎ (full width) are one name. Usernames
// are stored as given; the store refuses a second name of the same key.
func UsernameKey(name string) string {
	return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(name)))
}

// ErrBadUsername means a username has a character that cannot be seen or
// told apart, or mixes scripts (CheckUsername).
var ErrBadUsername = errors.New("a username may not be empty, nor have control, format, invisible or space characters, nor mix letters of several scripts")

// CheckUsername reports whether name may name an account: valid UTF-8,
// not empty, and with no control, format (zero-width joiners, bidi
// controls), private-use, unassigned or default-ignorable character, no
// space of any kind, and letters of one script at most (besides those
// every script shares, such as digits and punctuation), since a Latin
// name with one Cyrillic letter looks like another account's. Lengths and
// the allowed characters of a particular way in (sign-up) are that way's
// own rules.
func CheckUsername(name string) error {
	if name == "" || !utf8.ValidString(name) || UsernameKey(name) == "" {
		return ErrBadUsername
	}
	script := ""
	for _, r := range name {
		if invisible(r) {
			return ErrBadUsername
		}
		s := scriptOf(r)
		if s == "" {
			continue
		}
		if script != "" && s != script {
			return ErrBadUsername
		}
		script = s
	}
	return nil
}

// invisible reports whether r cannot be seen, or is no character to name
// anyone by.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || !unicode.IsPrint(r) ||
		unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zs, unicode.Zl, unicode.Zp,
			unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Noncharacter_Code_Point) ||
		strings.ContainsRune("\u115f\u1160\u3164\uffa0\u2800", r) // fillers and the blank braille pattern
}

// scriptOf is r's script, or "" for one that every script shares
// (Common, Inherited).
func scriptOf(r rune) string {
	if unicode.In(r, unicode.Common, unicode.Inherited) {
		return ""
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}
