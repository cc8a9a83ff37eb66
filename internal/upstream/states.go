package upstream

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A browser keeps at most MaxStates sign-ins through upstreams in
// progress: starting another forgets the oldest. Each state cookie lives
// StateGrace beyond its expiry, so that a person who took too long is
// told so rather than taken for an attacker.
const (
	MaxStates  = 4
	StateGrace = time.Hour
)

// StateCookieName is the name of the cookie of the sign-in whose state is
// state: a short hash of it, so that each sign-in has a cookie of its own.
func StateCookieName(state string) string {
	h := sha256.Sum256([]byte(state))
	return StatePrefix + hex.EncodeToString(h[:8])
}

// stateEntry is a state cookie the index remembers: its upstream, its
// name and its expiry (the cookie itself lives StateGrace longer).
type stateEntry struct {
	upstream, name string
	exp            int64
}

// parseStates reads the index "upstream:name:exp" entries joined by "."; an
// entry it does not understand is left out.
func parseStates(v string) []stateEntry {
	var out []stateEntry
	for _, f := range strings.Split(v, ".") {
		parts := strings.Split(f, ":")
		if len(parts) != 3 || !ValidID(parts[0]) || !strings.HasPrefix(parts[1], StatePrefix) {
			continue
		}
		exp, err := strconv.ParseInt(parts[2], 10, 64)
		if err == nil {
			out = append(out, stateEntry{parts[0], parts[1], exp})
		}
	}
	return out
}

func formatStates(list []stateEntry) string {
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = e.upstream + ":" + e.name + ":" + strconv.FormatInt(e.exp, 10)
	}
	return strings.Join(parts, ".")
}

// keepState stores st in a cookie of its own for upstream, and forgets
// the oldest of the browser's sign-ins in progress beyond MaxStates-1.
func (f *Flow) keepState(w http.ResponseWriter, r *http.Request, upstream string, st state) {
	var list []stateEntry
	if ck, err := r.Cookie(StatesIndex); err == nil {
		list = parseStates(ck.Value)
	}
	now := f.Now()
	list = slices.DeleteFunc(list, func(e stateEntry) bool { return !now.Before(time.Unix(e.exp, 0).Add(StateGrace)) })
	slices.SortFunc(list, func(a, b stateEntry) int { return int(a.exp - b.exp) })
	for len(list) >= MaxStates {
		f.setCookie(w, list[0].name, "/upstream/"+list[0].upstream+"/", "", -1)
		list = list[1:]
	}
	name, life := StateCookieName(st.State), int((f.TTL + StateGrace).Seconds())
	list = append(list, stateEntry{upstream, name, st.Exp})
	f.setCookie(w, name, "/upstream/"+upstream+"/", f.seal("state", upstream, st), life)
	f.setCookie(w, StatesIndex, "/", formatStates(list), life)
}

// forgetState deletes the state cookie name of upstream, spent or expired,
// and its entry in the index, so that it no longer counts among the
// browser's sign-ins in progress.
func (f *Flow) forgetState(w http.ResponseWriter, r *http.Request, upstream, name string) {
	f.setCookie(w, name, "/upstream/"+upstream+"/", "", -1)
	ck, err := r.Cookie(StatesIndex)
	if err != nil {
		return
	}
	list := slices.DeleteFunc(parseStates(ck.Value), func(e stateEntry) bool { return e.name == name })
	if len(list) == 0 {
		f.setCookie(w, StatesIndex, "/", "", -1)
		return
	}
	f.setCookie(w, StatesIndex, "/", formatStates(list), int((f.TTL + StateGrace).Seconds()))
}
