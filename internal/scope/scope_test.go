package scope

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"one", "openid", []string{"openid"}, false},
		{"several with extra spaces", " openid  email profile ", []string{"openid", "email", "profile"}, false},
		{"duplicates folded", "email email openid", []string{"email", "openid"}, false},
		{"quote refused", `a"b`, nil, true},
		{"backslash refused", `a\b`, nil, true},
		{"non-ascii refused", "émail", nil, true},
		{"tab refused", "a\tb", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	c := Default()
	if s, ok := c.Get("payment"); !ok || !s.Sensitive {
		t.Fatal("payment must be a sensitive scope")
	}
	if s, _ := c.Get("email"); s.Describe("ar") == s.Describe("en") || s.Describe("fr") != s.Describe("en") {
		t.Fatal("descriptions must be translated and fall back to English")
	}
	if got := c.Claims([]string{"email", "photo"}); !slices.Equal(got, []string{"email", "email_verified", "picture"}) {
		t.Fatalf("claims: %v", got)
	}
	if !Subset([]string{"a"}, []string{"b", "a"}) || Subset([]string{"a", "c"}, []string{"a"}) {
		t.Fatal("subset")
	}
}
