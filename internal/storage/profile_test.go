package storage

import (
	"strings"
	"testing"
)

func TestCheckProfile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*User)
		wantErr string // part of the error; empty for none
	}{
		{"empty", func(*User) {}, ""},
		{"full", func(u *User) {
			u.Picture = "https://example.com/a.png"
			u.Profile = Profile{GivenName: "Amal", FamilyName: "Haddad", Website: "https://amal.example", Birthdate: "1990-04-01",
				Zoneinfo: "America/Argentina/Buenos_Aires", Locale: "ar-JO", PhoneNumber: "+962791234567", PhoneNumberVerified: true,
				Address: Address{Formatted: "1 Rainbow St\nAmman", Country: "JO"}}
		}, ""},
		{"year only", func(u *User) { u.Profile.Birthdate = "1990" }, ""},
		{"year withheld", func(u *User) { u.Profile.Birthdate = "0000-04-01" }, ""},
		{"impossible date", func(u *User) { u.Profile.Birthdate = "1990-02-30" }, "birthdate"},
		{"other date form", func(u *User) { u.Profile.Birthdate = "01/04/1990" }, "birthdate"},
		{"javascript website", func(u *User) { u.Profile.Website = "javascript:alert(1)" }, "website"},
		{"relative picture", func(u *User) { u.Picture = "/a.png" }, "picture"},
		{"phone not E.164", func(u *User) { u.Profile.PhoneNumber = "0791234567" }, "phone_number"},
		{"phone with extension", func(u *User) { u.Profile.PhoneNumber = "+12025550123;ext=5" }, ""},
		{"verified without number", func(u *User) { u.Profile.PhoneNumberVerified = true }, "phone_number_verified"},
		{"zone with spaces", func(u *User) { u.Profile.Zoneinfo = "Asia/ Amman" }, "zoneinfo"},
		{"locale", func(u *User) { u.Profile.Locale = "en_US" }, ""},
		{"bad locale", func(u *User) { u.Profile.Locale = "english!" }, "locale"},
		{"newline in a name", func(u *User) { u.Profile.GivenName = "A\nB" }, "given_name"},
		{"long name", func(u *User) { u.Name = strings.Repeat("n", 201) }, "name"},
		{"control in address", func(u *User) { u.Profile.Address.Formatted = "a\x00b" }, "formatted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &User{Name: "Amal", Email: "amal@example.com"}
			tc.edit(u)
			err := CheckProfile(u)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}
