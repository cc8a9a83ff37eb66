package storage

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// The forms OpenID Connect Core §5.1 gives the standard claims.
var (
	birthdateRE = regexp.MustCompile(`^[0-9]{4}(-[0-9]{2}-[0-9]{2})?$`)             // YYYY-MM-DD, YYYY, or 0000-MM-DD
	zoneinfoRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z_]*(/[A-Za-z0-9_+-]+){0,2}$`) // IANA time zone database names
	localeRE    = regexp.MustCompile(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$`)      // BCP 47
	phoneRE     = regexp.MustCompile(`^\+[1-9][0-9]{6,14}(;ext=[0-9]{1,10})?$`)     // E.164, as §5.1 recommends
)

// maxClaimLen bounds each text claim; maxFormattedLen a formatted address.
const (
	maxClaimLen     = 200
	maxFormattedLen = 500
)

// CheckProfile validates what u says about a person (name, email,
// picture and Profile) in the forms OpenID Connect Core §5.1 gives; the
// error names the field to fix.
func CheckProfile(u *User) error {
	if err := checkText(u); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"website", u.Profile.Website}, {"picture", u.Picture}} {
		if f.v != "" && !webURL(f.v) {
			return fmt.Errorf("%s must be an http or https URL", f.name)
		}
	}
	return checkForms(&u.Profile)
}

// checkText bounds the free-text claims: one line each, but the formatted
// address, which may have several.
func checkText(u *User) error {
	p := &u.Profile
	text := []struct{ name, v string }{
		{"name", u.Name}, {"email", u.Email},
		{"given_name", p.GivenName}, {"family_name", p.FamilyName}, {"middle_name", p.MiddleName}, {"nickname", p.Nickname},
		{"gender", p.Gender}, {"street_address", p.Address.StreetAddress}, {"locality", p.Address.Locality},
		{"region", p.Address.Region}, {"postal_code", p.Address.PostalCode}, {"country", p.Address.Country},
	}
	for _, f := range text {
		if len(f.v) > maxClaimLen || strings.ContainsFunc(f.v, unicode.IsControl) {
			return fmt.Errorf("%s must be at most %d characters, on one line", f.name, maxClaimLen)
		}
	}
	if len(p.Address.Formatted) > maxFormattedLen || strings.ContainsFunc(p.Address.Formatted, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) {
		return fmt.Errorf("formatted address must be at most %d characters", maxFormattedLen)
	}
	return nil
}

// checkForms checks the claims that have a form of their own (§5.1), each
// when set.
func checkForms(p *Profile) error {
	forms := []struct {
		v     string
		valid func(string) bool
		want  string
	}{
		{p.Birthdate, validBirthdate, "birthdate must be YYYY-MM-DD, YYYY, or 0000-MM-DD when the year is withheld"},
		{p.Zoneinfo, zoneinfoRE.MatchString, "zoneinfo must be a time zone name such as Asia/Amman"},
		{p.Locale, localeRE.MatchString, "locale must be a language tag such as ar-JO"},
		{p.PhoneNumber, phoneRE.MatchString, "phone_number must be in E.164 form, such as +962791234567"},
	}
	for _, f := range forms {
		if f.v != "" && !f.valid(f.v) {
			return errors.New(f.want)
		}
	}
	if p.PhoneNumber == "" && p.PhoneNumberVerified {
		return errors.New("phone_number_verified needs a phone_number")
	}
	return nil
}

// validBirthdate reports whether s is YYYY, or YYYY-MM-DD naming a real
// day (0000 for a withheld year).
func validBirthdate(s string) bool {
	if !birthdateRE.MatchString(s) {
		return false
	}
	if len(s) == 10 {
		_, err := time.Parse("2006-01-02", s)
		return err == nil
	}
	return true
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 2048
}
