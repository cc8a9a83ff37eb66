package signin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// fakeRemote is an upstream: Leave redirects, Return proves "fed" for
// the person the callback's ?who= names, or fails without one.
type fakeRemote struct{ left *int }

func (fakeRemote) Name() string                                    { return "upstream:corp" }
func (fakeRemote) Kind() Kind                                      { return FirstFactor }
func (fakeRemote) Proves() []string                                { return []string{AMRFed} }
func (fakeRemote) Offered(context.Context, *Attempt) (bool, error) { return true, nil }
func (fakeRemote) Label(lang string) string                        { return "Corp-" + lang }
func (fakeRemote) Pending(*http.Request) (string, string)          { return "", "" }
func (fakeRemote) Show(w http.ResponseWriter, _ *http.Request, a *Attempt) {
	w.WriteHeader(a.Status)
	_, _ = w.Write([]byte("remote:" + a.Message))
}
func (fakeRemote) Verify(context.Context, *http.Request, *Attempt) (Outcome, error) {
	return Outcome{Result: Failed, Message: "use the button"}, nil
}
func (f fakeRemote) Leave(_ context.Context, w http.ResponseWriter, r *http.Request, _ *Attempt) error {
	*f.left++
	http.Redirect(w, r, "https://corp.example/authorize", http.StatusSeeOther)
	return nil
}
func (fakeRemote) Return(_ context.Context, _ http.ResponseWriter, r *http.Request, _ *Attempt) (Outcome, error) {
	if who := r.URL.Query().Get("who"); who != "" {
		return Outcome{Result: Proved, User: &storage.User{ID: who}}, nil
	}
	return Outcome{Result: Failed, Message: "denied"}, nil
}

// showStep renders the Elsewhere options it was given.
type showStep struct{ fakeStep }

func (s showStep) Show(w http.ResponseWriter, _ *http.Request, a *Attempt) {
	for _, o := range a.Elsewhere {
		_, _ = w.Write([]byte(o.Step + "=" + o.Label + ";"))
	}
}

// TestRemoteStep: a remote first factor is offered beside the password as
// a button, its choice leaves (no Verify), and its return proves "fed",
// after which the policy's second factor is still asked, and a finished
// sign-in is handed to Finished.
func TestRemoteStep(t *testing.T) {
	left := 0
	remote := fakeRemote{left: &left}
	pwd := showStep{fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}}
	totp := fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}, offered: true}
	var finished []Record
	p := &Pipeline{Steps: []Step{pwd, remote}, Now: func() time.Time { return t0 },
		Finished: func(_ context.Context, _ http.ResponseWriter, _ *http.Request, rec *Record) error {
			finished = append(finished, *rec)
			return nil
		}}
	ctx := context.Background()

	w := httptest.NewRecorder()
	if err := p.Show(ctx, w, httptest.NewRequest(http.MethodGet, "/login", nil), &Attempt{Lang: "ar"}); err != nil {
		t.Fatal(err)
	}
	if w.Body.String() != "upstream:corp=Corp-ar;" {
		t.Fatalf("login page offers %q", w.Body.String())
	}
	w = httptest.NewRecorder()
	rec, err := p.Submit(ctx, w, postForm("", "upstream:corp"), &Attempt{Choice: "upstream:corp"})
	if err != nil || rec != nil || w.Code != http.StatusSeeOther || left != 1 {
		t.Fatalf("choosing the upstream: %v %v %d, left %d", rec, err, w.Code, left)
	}
	if rs, err := p.Remote(ctx, "upstream:corp"); rs == nil || err != nil {
		t.Fatal("Remote misses the upstream's step")
	}
	if rs, _ := p.Remote(ctx, "password"); rs != nil {
		t.Fatal("Remote finds a step that is not remote")
	}

	w = httptest.NewRecorder()
	rec, err = p.Return(ctx, w, httptest.NewRequest(http.MethodGet, "/upstream/corp/callback", nil), &Attempt{}, remote)
	if err != nil || rec != nil || w.Code != http.StatusUnauthorized || w.Body.String() != "remote:denied" {
		t.Fatalf("a failed return: %v %v %d %q", rec, err, w.Code, w.Body.String())
	}
	rec, err = p.Return(ctx, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/upstream/corp/callback?who=u1", nil), &Attempt{}, remote)
	if err != nil || rec == nil || rec.UserID != "u1" || !slices.Equal(rec.AMR, []string{"fed"}) || len(finished) != 1 {
		t.Fatalf("a return that proves: %+v %v, finished %v", rec, err, finished)
	}

	// A sign-in for an app (the account pages alone are spared the
	// operator's second factor).
	forApp := func() *Attempt {
		return &Attempt{Request: &storage.AuthRequest{ID: "r1", ClientID: "notes", MaxAge: -1}}
	}
	p.Policy, p.Steps, p.Progress = Policy{SecondFactor: true}, []Step{pwd, remote, totp}, &memProgress{}
	w = httptest.NewRecorder()
	rec, err = p.Return(ctx, w, httptest.NewRequest(http.MethodGet, "/upstream/corp/callback?who=u1", nil), forApp(), remote)
	if err != nil || rec != nil || w.Body.String() != "totp:" {
		t.Fatalf("the second factor after the upstream: %v %v %q", rec, err, w.Body.String())
	}
	rec, err = p.Submit(ctx, httptest.NewRecorder(), postForm("ok", ""), forApp())
	if err != nil || rec == nil || !slices.Equal(rec.AMR, []string{"fed", "otp", "mfa"}) || rec.ACR != ACRMFA {
		t.Fatalf("after the second factor: %+v %v", rec, err)
	}
}

// TestMoreSteps: the steps More returns are read at every request, so an
// upstream added appears and one removed is neither offered nor found by
// its callback; More's failure is the request's.
func TestMoreSteps(t *testing.T) {
	left := 0
	var more []Step
	var moreErr error
	pwd := showStep{fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}}
	p := &Pipeline{Steps: []Step{pwd}, Now: func() time.Time { return t0 },
		More: func(context.Context) ([]Step, error) { return more, moreErr }}
	ctx := context.Background()
	page := func() string {
		w := httptest.NewRecorder()
		if err := p.Show(ctx, w, httptest.NewRequest(http.MethodGet, "/login", nil), &Attempt{Lang: "en"}); err != nil {
			t.Fatal(err)
		}
		return w.Body.String()
	}
	tests := []struct {
		name   string
		more   []Step
		page   string
		remote bool
	}{
		{"none yet", nil, "", false},
		{"added", []Step{fakeRemote{left: &left}}, "upstream:corp=Corp-en;", true},
		{"removed", nil, "", false},
	}
	for _, tt := range tests {
		more = tt.more
		if got := page(); got != tt.page {
			t.Fatalf("%s: login page offers %q, want %q", tt.name, got, tt.page)
		}
		if rs, err := p.Remote(ctx, "upstream:corp"); err != nil || (rs != nil) != tt.remote {
			t.Fatalf("%s: Remote = %v, %v", tt.name, rs, err)
		}
	}
	moreErr = storage.ErrUnavailable
	if _, err := p.Remote(ctx, "upstream:corp"); err != storage.ErrUnavailable {
		t.Fatalf("Remote with More failing: %v", err)
	}
	if err := p.Show(ctx, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/login", nil), &Attempt{}); err == nil {
		t.Fatal("Show with More failing succeeded")
	}
}
