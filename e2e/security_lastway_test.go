package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// TestSecurityPageLastWayIn: the Security page offers no button the
// server would refuse. A person made by an upstream sign-in (no password)
// sees no Unlink button on the only link but a note saying why and what
// to add first; with a passkey beside it both buttons are there; once the
// link is gone the only passkey has no Remove button and the note, in
// English and in Arabic; after setting a password the Remove button is
// back (and the server still refuses the last way in: TestPasskeyLastWayIn).
func TestSecurityPageLastWayIn(t *testing.T) {
	ctx := context.Background()
	e, b, userID := upstreamOnlyPerson(t, sqliteStore(t), "lastway")
	const (
		unlinkButton = `id="unlink-fake"`
		linkNote     = `id="link-last-fake"`
		removeButton = `passkey-delete`
		keyNote      = `passkey-last`
	)
	page := func(lang string) string {
		t.Helper()
		pg := b.get("/account/security?ui_locales=" + lang)
		if pg.Status != 200 {
			t.Fatalf("security page answered %d", pg.Status)
		}
		return pg.Body
	}
	want := func(step, body string, has, hasNot []string) {
		t.Helper()
		for _, s := range has {
			if !strings.Contains(body, s) {
				t.Errorf("%s: page lacks %q", step, s)
			}
		}
		for _, s := range hasNot {
			if strings.Contains(body, s) {
				t.Errorf("%s: page shows %q", step, s)
			}
		}
	}

	// The link alone.
	body := page("en")
	want("link only", body, []string{linkNote, ui.T("en", "security.upstream.lastnote")}, []string{unlinkButton})

	// A link and a passkey: either may go.
	if err := e.Store.CreatePasskey(ctx, storage.Passkey{ID: "cred-last", UserID: userID, Name: "laptop", Credential: "{}", CreatedAt: e.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	want("link and passkey", page("en"), []string{unlinkButton, removeButton}, []string{linkNote, keyNote})

	csrf := csrfOf(t, b.get("/account/security"))
	if pg := b.post("/account/security/upstream/unlink", url.Values{"csrf_token": {csrf}, "upstream": {"fake"}}); pg.Status != 303 {
		t.Fatalf("unlink beside a passkey answered %d %.300s", pg.Status, pg.Body)
	}

	// The passkey alone, in each language.
	for _, lang := range ui.Languages {
		want("passkey only ("+lang+")", page(lang), []string{keyNote, ui.T(lang, "security.passkey.lastnote")}, []string{removeButton})
	}

	// A password set: the passkey may go again.
	pw := "correct horse battery staple 42"
	if pg := b.post("/account/security/password", url.Values{"csrf_token": {csrf}, "new": {pw}, "confirm": {pw}}); pg.Status != 303 {
		t.Fatalf("setting a first password answered %d %.300s", pg.Status, pg.Body)
	}
	want("passkey and password", page("en"), []string{removeButton}, []string{keyNote})
	if pg := b.post("/account/security/passkeys/delete", url.Values{"csrf_token": {csrf}, "id": {"cred-last"}}); pg.Status != 303 {
		t.Fatalf("removing the passkey beside a password answered %d %.300s", pg.Status, pg.Body)
	}
}
