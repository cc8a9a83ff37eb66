package account

import "testing"

func TestValidUsername(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"amal", true},
		{"a.b-c_d9", true},
		{"ab", false},
		{"amal@example.com", false}, // an address, not a username: reset tells them apart by "@"
		{"amal haddad", false},
		{"أمل", false},
		{"a\r\nb", false},
		{string(make([]byte, 65)), false},
	}
	for _, tc := range tests {
		if got := ValidUsername(tc.name); got != tc.want {
			t.Errorf("ValidUsername(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Amal Haddad", true},
		{"أمل حداد", true},
		{"", false},
		{"Eve\r\nBcc: victim@example.org", false},
		{"tab\there", false},
		{"\xff", false},
	}
	for _, tc := range tests {
		if got := ValidName(tc.name); got != tc.want {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
