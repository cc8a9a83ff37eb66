package ui

import (
	"strconv"
	"time"
)

var arabicMonths = [12]string{"يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"}

// Date is the day of t (in UTC) written for lang: "2 January 2026", or in
// Arabic "2 يناير 2026" with the month's Arabic name.
func Date(lang string, t time.Time) string {
	t = t.UTC()
	if lang == "ar" {
		return strconv.Itoa(t.Day()) + " " + arabicMonths[t.Month()-1] + " " + strconv.Itoa(t.Year())
	}
	return t.Format("2 January 2006")
}

// Ago is how long before now t was, for lang: "just now", "5 minutes
// ago", "3 hours ago" within a day, and "on" its Date after that.
func Ago(lang string, t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return T(lang, "time.now")
	case d < time.Hour:
		return count(lang, "time.minutes", int(d/time.Minute))
	case d < 24*time.Hour:
		return count(lang, "time.hours", int(d/time.Hour))
	}
	return T(lang, "time.on", Date(lang, t))
}

// count words n of a unit: key.one, key.two (Arabic's dual), key.few (3
// to 10, Arabic's plural) or key.many, with n.
func count(lang, key string, n int) string {
	switch {
	case n == 1:
		return T(lang, key+".one")
	case n == 2:
		return T(lang, key+".two")
	case n <= 10:
		return T(lang, key+".few", n)
	}
	return T(lang, key+".many", n)
}
