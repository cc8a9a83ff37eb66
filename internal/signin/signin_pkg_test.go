package signin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func TestPolicyNeeded(t *testing.T) {
	first := Proof{Step: "password", Kind: FirstFactor, AMR: []string{AMRPassword}, At: t0.Add(-time.Minute)}
	second := Proof{Step: "totp", Kind: SecondFactor, AMR: []string{AMROTP}, At: t0.Add(-time.Minute)}
	old := Proof{Step: "password", Kind: FirstFactor, AMR: []string{AMRPassword}, At: t0.Add(-time.Hour)}
	tests := []struct {
		name   string
		policy Policy
		demand Demand
		proved []Proof
		want   []Kind
	}{
		{"nothing proved: first factor", Policy{}, Demand{MaxAge: -1}, nil, []Kind{FirstFactor}},
		{"first proved: done", Policy{}, Demand{MaxAge: -1}, []Proof{first}, nil},
		{"a second factor alone identifies nobody", Policy{}, Demand{MaxAge: -1}, []Proof{second}, []Kind{FirstFactor}},
		{"operator wants a second factor", Policy{SecondFactor: true}, Demand{ClientID: "app", MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
		{"operator: both, from scratch", Policy{SecondFactor: true}, Demand{ClientID: "app", MaxAge: -1}, nil, []Kind{FirstFactor, SecondFactor}},
		{"operator: both proved", Policy{SecondFactor: true}, Demand{ClientID: "app", MaxAge: -1}, []Proof{first, second}, nil},
		{"operator: the account pages are spared", Policy{SecondFactor: true}, Demand{MaxAge: -1}, []Proof{first}, nil},
		{"operator: enrolled still asked on the account pages", Policy{SecondFactor: true, AskEnrolled: true}, Demand{MaxAge: -1, Enrolled: true}, []Proof{first}, []Kind{SecondFactor}},
		{"client flag wants a second factor", Policy{}, Demand{ClientID: "bank", Client: true, MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
		{"client flag: both proved", Policy{}, Demand{ClientID: "bank", Client: true, MaxAge: -1}, []Proof{first, second}, nil},
		{"client flag: a stale second factor", Policy{}, Demand{ClientID: "bank", Client: true, MaxAge: 300}, []Proof{first, {Kind: SecondFactor, At: t0.Add(-time.Hour)}}, []Kind{SecondFactor}},
		{"acr_values mfa alone", Policy{}, Demand{ACRValues: []string{ACRMFA}, MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
		{"acr_values: an unknown first choice is passed over", Policy{}, Demand{ACRValues: []string{"urn:other:gold", ACRMFA}, MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
		{"acr_values: password before mfa", Policy{}, Demand{ACRValues: []string{"urn:other:gold", ACRPassword, ACRMFA}, MaxAge: -1}, []Proof{first}, nil},
		{"acr_values unknown value is voluntary", Policy{}, Demand{ACRValues: []string{"urn:other:gold"}, MaxAge: -1}, []Proof{first}, nil},
		{"essential acr of unknown values only", Policy{}, Demand{EssentialACR: []string{"urn:other:gold"}, MaxAge: -1}, []Proof{first}, nil},
		{"client wants a second factor", Policy{SecondFactorClients: []string{"bank"}}, Demand{ClientID: "bank", MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
		{"another client does not", Policy{SecondFactorClients: []string{"bank"}}, Demand{ClientID: "notes", MaxAge: -1}, []Proof{first}, nil},
		{"sensitive scope", Policy{SensitiveScopes: []string{"payments"}}, Demand{Scopes: []string{"openid", "payments"}, MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
		{"no sensitive scope asked", Policy{SensitiveScopes: []string{"payments"}}, Demand{Scopes: []string{"openid"}, MaxAge: -1}, []Proof{first}, nil},
		{"acr_values prefers mfa", Policy{}, Demand{ACRValues: []string{ACRMFA, ACRPassword}, MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
		{"acr_values prefers password", Policy{}, Demand{ACRValues: []string{ACRPassword, ACRMFA}, MaxAge: -1}, []Proof{first}, nil},
		{"essential acr mfa", Policy{}, Demand{EssentialACR: []string{ACRMFA}, MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
		{"essential acr mfa or password", Policy{}, Demand{EssentialACR: []string{ACRMFA, ACRPassword}, MaxAge: -1}, []Proof{first}, nil},
		{"max_age: fresh proof holds", Policy{}, Demand{MaxAge: 300}, []Proof{first}, nil},
		{"max_age: old proof does not", Policy{}, Demand{MaxAge: 300}, []Proof{old}, []Kind{FirstFactor}},
		{"max_age=0 wants a proof now", Policy{}, Demand{MaxAge: 0}, []Proof{first}, []Kind{FirstFactor}},
		{"max_age=0: a proof made since the request holds", Policy{}, Demand{MaxAge: 0, Created: t0.Add(-90 * time.Second)}, []Proof{first}, nil},
		{"max_age=0: a proof of the request's second holds", Policy{}, Demand{MaxAge: 0, Created: t0.Add(-time.Minute + 500*time.Millisecond)}, []Proof{first}, nil},
		{"max_age=0: a proof from before the request does not", Policy{}, Demand{MaxAge: 0, Created: t0.Add(-30 * time.Second)}, []Proof{first}, []Kind{FirstFactor}},
		{"max_age: an old proof before the request does not", Policy{}, Demand{MaxAge: 300, Created: t0.Add(-time.Minute)}, []Proof{old}, []Kind{FirstFactor}},
		{"max_age on both factors", Policy{SecondFactor: true}, Demand{ClientID: "app", MaxAge: 300}, []Proof{old, second}, []Kind{FirstFactor}},
		{"prompt=login: proof before the request does not hold", Policy{}, Demand{MaxAge: -1, Since: t0.Add(-30 * time.Second)}, []Proof{first}, []Kind{FirstFactor}},
		{"prompt=login: proof after the request holds", Policy{}, Demand{MaxAge: -1, Since: t0.Add(-2 * time.Minute)}, []Proof{first}, nil},
		{"enrolled, asked", Policy{AskEnrolled: true}, Demand{MaxAge: -1, Enrolled: true}, []Proof{first}, []Kind{SecondFactor}},
		{"off: the account pages ask an enrolled factor", Policy{}, Demand{MaxAge: -1, Account: true, Enrolled: true}, []Proof{first}, []Kind{SecondFactor}},
		{"off: the account pages ask nothing more of who has none", Policy{}, Demand{MaxAge: -1, Account: true}, []Proof{first}, nil},
		{"off: an app that asks nothing does not ask the enrolled factor", Policy{}, Demand{ClientID: "app", MaxAge: -1, Enrolled: true}, []Proof{first}, nil},
		{"enrolled, both proved", Policy{AskEnrolled: true}, Demand{MaxAge: -1, Enrolled: true}, []Proof{first, second}, nil},
		{"not enrolled, not asked", Policy{AskEnrolled: true}, Demand{MaxAge: -1}, []Proof{first}, nil},
		{"enrolled, policy off", Policy{}, Demand{MaxAge: -1, Enrolled: true}, []Proof{first}, nil},
		{"off: an enrolled client asks the enrolled factor", Policy{EnrolledClients: []string{"console"}}, Demand{ClientID: "console", MaxAge: -1, Enrolled: true}, []Proof{first}, []Kind{SecondFactor}},
		{"off: an enrolled client asks nothing more of who has none", Policy{EnrolledClients: []string{"console"}}, Demand{ClientID: "console", MaxAge: -1}, []Proof{first}, nil},
		{"off: an enrolled client is met by both", Policy{EnrolledClients: []string{"console"}}, Demand{ClientID: "console", MaxAge: -1, Enrolled: true}, []Proof{first, second}, nil},
		{"off: another client of the enrolled person asks nothing", Policy{EnrolledClients: []string{"console"}}, Demand{ClientID: "app", MaxAge: -1, Enrolled: true}, []Proof{first}, nil},
		{"a second-factor client asks it of who has none", Policy{SecondFactorClients: []string{"console"}}, Demand{ClientID: "console", MaxAge: -1}, []Proof{first}, []Kind{SecondFactor}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.Needed(tt.demand, tt.proved, t0); !slices.Equal(got, tt.want) {
				t.Errorf("Needed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDemandOf(t *testing.T) {
	tests := []struct {
		name string
		req  *storage.AuthRequest
		want Demand
	}{
		{"account sign-in", nil, Demand{MaxAge: -1}},
		{"plain request", &storage.AuthRequest{ClientID: "c", Scopes: []string{"openid"}, MaxAge: -1, CreatedAt: t0},
			Demand{ClientID: "c", Scopes: []string{"openid"}, MaxAge: -1}},
		{"prompt=login", &storage.AuthRequest{Prompt: "consent login", MaxAge: 60, CreatedAt: t0}, Demand{MaxAge: 60, Since: t0}},
		{"essential acr", &storage.AuthRequest{MaxAge: -1, Claims: `{"id_token":{"acr":{"essential":true,"values":["` + ACRMFA + `"]}}}`},
			Demand{MaxAge: -1, EssentialACR: []string{ACRMFA}}},
		{"acr_values", &storage.AuthRequest{MaxAge: -1, ACRValues: ACRMFA + " " + ACRPassword},
			Demand{MaxAge: -1, ACRValues: []string{ACRMFA, ACRPassword}}},
		{"voluntary acr is no demand", &storage.AuthRequest{MaxAge: -1, Claims: `{"id_token":{"acr":{"values":["` + ACRMFA + `"]}}}`},
			Demand{MaxAge: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DemandOf(tt.req)
			if got.ClientID != tt.want.ClientID || !slices.Equal(got.Scopes, tt.want.Scopes) || got.MaxAge != tt.want.MaxAge ||
				!got.Since.Equal(tt.want.Since) || !slices.Equal(got.EssentialACR, tt.want.EssentialACR) {
				t.Errorf("DemandOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeStep proves when the form's answer is "ok", throttles on "slow".
type fakeStep struct {
	name    string
	kind    Kind
	amr     []string
	offered bool
	err     error
}

func (f fakeStep) Name() string     { return f.name }
func (f fakeStep) Kind() Kind       { return f.kind }
func (f fakeStep) Proves() []string { return f.amr }
func (f fakeStep) Offered(context.Context, *Attempt) (bool, error) {
	return f.offered, nil
}
func (f fakeStep) Show(w http.ResponseWriter, _ *http.Request, a *Attempt) {
	w.WriteHeader(a.Status)
	_, _ = w.Write([]byte(f.name + ":" + a.Message))
}
func (f fakeStep) Verify(_ context.Context, r *http.Request, _ *Attempt) (Outcome, error) {
	switch r.PostForm.Get("answer") {
	case "ok":
		return Outcome{Result: Proved, User: &storage.User{ID: "u-" + f.name}}, f.err
	case "slow":
		return Outcome{Result: Throttled, Message: "wait", Retry: 3 * time.Second}, f.err
	}
	return Outcome{Result: Failed, Message: "wrong"}, f.err
}

// memProgress keeps one unfinished sign-in.
type memProgress struct {
	user   *storage.User
	proved []Proof
	saved  int
}

func (m *memProgress) Load(_ context.Context, _ *http.Request, a *Attempt) error {
	a.User, a.Proved = m.user, slices.Clone(m.proved)
	return nil
}
func (m *memProgress) Save(_ context.Context, _ http.ResponseWriter, _ *http.Request, a *Attempt) error {
	m.user, m.proved = a.User, slices.Clone(a.Proved)
	m.saved++
	return nil
}
func (m *memProgress) Clear(context.Context, http.ResponseWriter, *http.Request) error {
	m.user, m.proved = nil, nil
	return nil
}

func postForm(answer, choice string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("answer="+answer+"&step="+choice))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_ = r.ParseForm()
	return r
}

func TestPipeline(t *testing.T) {
	pwd := fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}
	passkey := fakeStep{name: "passkey", kind: FirstFactor, amr: []string{AMRHardware}, offered: true}
	totp := fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}, offered: true}
	unenrolled := fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}}
	type post struct{ answer, choice string }
	tests := []struct {
		name     string
		policy   Policy
		steps    []Step
		progress bool
		posts    []post
		// want is the response of each post: status and body, or "record"
		// for a finished sign-in.
		want    []string
		wantRec Record
		wantErr error
	}{
		{name: "password alone", steps: []Step{pwd}, posts: []post{{"ok", ""}},
			want: []string{"record"}, wantRec: Record{UserID: "u-password", Steps: []string{"password"}, AMR: []string{"pwd"}, ACR: ACRPassword}},
		{name: "wrong then right", steps: []Step{pwd}, posts: []post{{"bad", ""}, {"ok", ""}},
			want: []string{"401 password:wrong", "record"}, wantRec: Record{UserID: "u-password", Steps: []string{"password"}, AMR: []string{"pwd"}, ACR: ACRPassword}},
		{name: "throttled", steps: []Step{pwd}, posts: []post{{"slow", ""}}, want: []string{"429 password:wait"}},
		{name: "first offered step unless chosen", steps: []Step{pwd, passkey}, posts: []post{{"ok", "passkey"}},
			want: []string{"record"}, wantRec: Record{UserID: "u-passkey", Steps: []string{"passkey"}, AMR: []string{"hwk"}, ACR: ACRPassword}},
		{name: "unknown choice takes the first", steps: []Step{pwd, passkey}, posts: []post{{"ok", "nosuch"}},
			want: []string{"record"}, wantRec: Record{UserID: "u-password", Steps: []string{"password"}, AMR: []string{"pwd"}, ACR: ACRPassword}},
		{name: "second factor after the first", policy: Policy{SecondFactor: true}, steps: []Step{pwd, totp}, progress: true,
			posts:   []post{{"ok", ""}, {"bad", ""}, {"ok", ""}},
			want:    []string{"200 totp:", "401 totp:wrong", "record"},
			wantRec: Record{UserID: "u-password", Steps: []string{"password", "totp"}, AMR: []string{"pwd", "otp", "mfa"}, ACR: ACRMFA}},
		{name: "second factor not enrolled", policy: Policy{SecondFactor: true}, steps: []Step{pwd, unenrolled}, progress: true,
			posts: []post{{"ok", ""}}, wantErr: ErrNoStep},
		{name: "several steps need somewhere to wait", policy: Policy{SecondFactor: true}, steps: []Step{pwd, totp},
			posts: []post{{"ok", ""}}, wantErr: ErrNoProgress},
		{name: "no first factor registered", steps: []Step{totp}, posts: []post{{"ok", ""}}, wantErr: ErrNoStep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Pipeline{Policy: tt.policy, Steps: tt.steps, Now: func() time.Time { return t0 }}
			if tt.progress {
				p.Progress = &memProgress{}
			}
			for i, po := range tt.posts {
				w := httptest.NewRecorder()
				a := &Attempt{Choice: po.choice, Request: &storage.AuthRequest{ID: "r", ClientID: "app", MaxAge: -1}}
				rec, err := p.Submit(context.Background(), w, postForm(po.answer, po.choice), a)
				if tt.wantErr != nil && i == len(tt.posts)-1 {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("post %d: err = %v, want %v", i, err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("post %d: %v", i, err)
				}
				got := "record"
				if rec == nil {
					got = strconv.Itoa(w.Code) + " " + w.Body.String()
				}
				if got != tt.want[i] {
					t.Fatalf("post %d: got %q, want %q", i, got, tt.want[i])
				}
				if rec != nil {
					rec.AuthTime = time.Time{}
					if rec.UserID != tt.wantRec.UserID || rec.ACR != tt.wantRec.ACR || !slices.Equal(rec.AMR, tt.wantRec.AMR) || !slices.Equal(rec.Steps, tt.wantRec.Steps) {
						t.Errorf("record = %+v, want %+v", *rec, tt.wantRec)
					}
				}
				if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") != "3" {
					t.Errorf("Retry-After = %q, want 3", w.Header().Get("Retry-After"))
				}
			}
		})
	}
}

func TestShow(t *testing.T) {
	pwd := fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}
	p := &Pipeline{Steps: []Step{pwd}, Now: func() time.Time { return t0 }}
	w := httptest.NewRecorder()
	if err := p.Show(context.Background(), w, httptest.NewRequest(http.MethodGet, "/login", nil), &Attempt{}); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusOK || w.Body.String() != "password:" {
		t.Errorf("Show wrote %d %q, want the password step", w.Code, w.Body.String())
	}
}

func TestRecord(t *testing.T) {
	a := &Attempt{User: &storage.User{ID: "u"}, Proved: []Proof{
		{Step: "password", Kind: FirstFactor, AMR: []string{AMRPassword}, At: t0},
		{Step: "passkey", Kind: SecondFactor, AMR: []string{AMRHardware, AMRMFA}, At: t0.Add(time.Second)},
	}}
	rec := a.Record()
	if !slices.Equal(rec.AMR, []string{"pwd", "hwk", "mfa"}) || rec.ACR != ACRMFA || !rec.AuthTime.Equal(t0.Add(time.Second)) {
		t.Errorf("Record = %+v", rec)
	}
}

// TestPipelineStaleProof: a first factor that went stale under max_age
// while the person was on the second step is asked for again, not taken
// as proved and not refused, when it was proved before the request (a
// session's); one proved for the request counts however long the person
// then took (max_age=0 could not be met otherwise).
func TestPipelineStaleProof(t *testing.T) {
	for _, tc := range []struct {
		name    string
		created time.Time
		want    []string
	}{
		{"proved before the request", t0.Add(time.Minute), []string{"200 totp:", "200 totp:"}},
		{"proved for the request", t0, []string{"200 totp:", "record"}},
	} {
		now := t0
		pwd := fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}
		totp := fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}, offered: true}
		p := &Pipeline{Policy: Policy{SecondFactor: true}, Steps: []Step{pwd, totp}, Progress: &memProgress{}, Now: func() time.Time { return now }}
		req := &storage.AuthRequest{ID: "r1", ClientID: "app", MaxAge: 60, CreatedAt: tc.created}
		for i, want := range tc.want {
			w := httptest.NewRecorder()
			rec, err := p.Submit(context.Background(), w, postForm("ok", ""), &Attempt{Request: req})
			got := strconv.Itoa(w.Code) + " " + w.Body.String()
			if rec != nil {
				got = "record"
			}
			if err != nil || got != want {
				t.Fatalf("%s: post %d: got %q (err %v), want %q", tc.name, i, got, err, want)
			}
			now = now.Add(2 * time.Minute) // the password's proof is now older than max_age
		}
	}
}

// TestDemandFor: a client's own flag joins the demand of its requests,
// never of a sign-in to the account pages.
func TestDemandFor(t *testing.T) {
	bank := &storage.Client{ID: "bank", SecondFactor: true}
	req := &storage.AuthRequest{ClientID: "bank", MaxAge: -1}
	if d := DemandFor(req, bank); !d.Client {
		t.Error("the client's second_factor flag is not in the demand")
	}
	if d := DemandFor(req, &storage.Client{ID: "bank"}); d.Client {
		t.Error("a client without the flag demands a second factor")
	}
	if d := DemandFor(nil, bank); d.Client {
		t.Error("an account sign-in took a client's flag")
	}
}

// TestSessionProofs: what a session proved counts as proofs as of its
// auth_time; only amr mfa counts as a second factor, so a password
// session is stepped up and a passkey that verified its user is not.
func TestSessionProofs(t *testing.T) {
	mfa := Demand{ClientID: "app", ACRValues: []string{ACRMFA}, MaxAge: -1}
	tests := []struct {
		name    string
		amr     []string
		at      time.Time
		demand  Demand
		want    []Kind
		wantAMR []string
	}{
		{"password session, no demand", []string{"pwd"}, t0, Demand{ClientID: "app", MaxAge: -1}, nil, []string{"pwd"}},
		{"old session without amr is a password", nil, t0, Demand{ClientID: "app", MaxAge: -1}, nil, []string{"pwd"}},
		{"password session, mfa asked", []string{"pwd"}, t0, mfa, []Kind{SecondFactor}, []string{"pwd"}},
		{"password and code", []string{"pwd", "otp", "mfa"}, t0, mfa, nil, []string{"pwd", "otp", "mfa"}},
		{"passkey with user verification", []string{"hwk", "mfa"}, t0, mfa, nil, []string{"hwk", "mfa"}},
		{"synced passkey with user verification", []string{"swk", "mfa"}, t0, mfa, nil, []string{"swk", "mfa"}},
		{"mfa session too old for max_age", []string{"pwd", "otp", "mfa"}, t0.Add(-time.Hour), Demand{ClientID: "app", ACRValues: []string{ACRMFA}, MaxAge: 60}, []Kind{FirstFactor, SecondFactor}, nil},
		{"session before prompt=login", []string{"pwd"}, t0.Add(-time.Minute), Demand{ClientID: "app", MaxAge: -1, Since: t0}, []Kind{FirstFactor}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proved := SessionProofs(&storage.Session{AMR: tt.amr, AuthTime: tt.at})
			if got := (Policy{}).Needed(tt.demand, proved, t0); !slices.Equal(got, tt.want) {
				t.Errorf("Needed = %v, want %v", got, tt.want)
			}
			if tt.wantAMR == nil {
				return
			}
			rec := (&Attempt{User: &storage.User{ID: "u"}, Proved: proved}).Record()
			if !slices.Equal(rec.AMR, tt.wantAMR) || !rec.AuthTime.Equal(tt.at) {
				t.Errorf("Record = %+v, want amr %v", rec, tt.wantAMR)
			}
		})
	}
	if SessionProofs(nil) != nil {
		t.Error("no session proved something")
	}
}

// TestCheck: a session's proofs against a request through the pipeline:
// met, a missing second factor asked, or none enrolled (ErrNoStep).
func TestCheck(t *testing.T) {
	pwd := fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}
	totp := fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}, offered: true}
	unenrolled := fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}}
	req := &storage.AuthRequest{ID: "r", ClientID: "app", MaxAge: -1, ACRValues: ACRMFA}
	sess := &storage.Session{AMR: []string{"pwd"}, AuthTime: t0}
	user := &storage.User{ID: "u"}
	p := &Pipeline{Steps: []Step{pwd, totp}, Now: func() time.Time { return t0 }}
	if s, err := p.Check(context.Background(), &Attempt{Request: req, User: user, Proved: SessionProofs(sess)}); err != nil || s == nil || s.Name() != "totp" {
		t.Errorf("password session, mfa asked: step %v, err %v; want totp", s, err)
	}
	mfaSess := &storage.Session{AMR: []string{"pwd", "otp", "mfa"}, AuthTime: t0}
	if s, err := p.Check(context.Background(), &Attempt{Request: req, User: user, Proved: SessionProofs(mfaSess)}); err != nil || s != nil {
		t.Errorf("mfa session: step %v, err %v; want none", s, err)
	}
	p.Steps = []Step{pwd, unenrolled}
	if _, err := p.Check(context.Background(), &Attempt{Request: req, User: user, Proved: SessionProofs(sess)}); !errors.Is(err, ErrNoStep) {
		t.Errorf("nothing enrolled: err %v, want ErrNoStep", err)
	}
}

// TestSessionProofsStayWithTheSession: proofs carried over from a session
// count while that session is the same person's; in the progress of a
// browser whose session ended, or is another person's, they count for
// nothing and the first factor is asked again.
func TestSessionProofsStayWithTheSession(t *testing.T) {
	pwd := fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}
	totp := fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}, offered: true}
	req := &storage.AuthRequest{ID: "r", ClientID: "app", MaxAge: -1, ACRValues: ACRMFA}
	user := &storage.User{ID: "u"}
	proved := SessionProofs(&storage.Session{AMR: []string{"pwd"}, AuthTime: t0})
	for _, tc := range []struct {
		name, sessionUser, want string
	}{
		{"same session", "u", "totp:"},
		{"signed out since", "", "password:"},
		{"another person's session", "v", "password:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pipeline{Steps: []Step{pwd, totp}, Progress: &memProgress{user: user, proved: proved}, Now: func() time.Time { return t0 }}
			w := httptest.NewRecorder()
			a := &Attempt{Request: req, SessionUser: tc.sessionUser}
			if err := p.Show(context.Background(), w, httptest.NewRequest(http.MethodGet, "/login", nil), a); err != nil {
				t.Fatal(err)
			}
			if w.Body.String() != tc.want {
				t.Errorf("shown %q, want %q", w.Body.String(), tc.want)
			}
		})
	}
}

// TestRecordLeavesStaleProofsOut: a session proof too old for max_age is
// not claimed in the record of the fresh sign-in that replaced it (a
// passkey session, stepped up again with a password and a code, claims
// pwd otp mfa, not hwk).
func TestRecordLeavesStaleProofsOut(t *testing.T) {
	pwd := fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}
	totp := fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}, offered: true}
	user := &storage.User{ID: "u-password"}
	old := SessionProofs(&storage.Session{AMR: []string{"hwk", "mfa"}, AuthTime: t0.Add(-time.Hour)})
	req := &storage.AuthRequest{ID: "r", ClientID: "app", MaxAge: 60, ACRValues: ACRMFA}
	p := &Pipeline{Steps: []Step{pwd, totp}, Progress: &memProgress{}, Now: func() time.Time { return t0 }}
	a := &Attempt{Request: req, User: user, Proved: old, SessionUser: "u-password"}
	ctx := context.Background()
	if rec, err := p.Submit(ctx, httptest.NewRecorder(), postForm("ok", ""), a); err != nil || rec != nil {
		t.Fatalf("password: %v %v", rec, err)
	}
	a = &Attempt{Request: req, SessionUser: "u-password"}
	rec, err := p.Submit(ctx, httptest.NewRecorder(), postForm("ok", ""), a)
	if err != nil || rec == nil {
		t.Fatalf("code: %v %v", rec, err)
	}
	if !slices.Equal(rec.AMR, []string{"pwd", "otp", "mfa"}) || rec.ACR != ACRMFA {
		t.Errorf("record %+v claims a stale proof", *rec)
	}
}

// TestRecordUpstreamSession: the upstream session a first factor proved
// through is the Record's, for the local session to keep; a second factor
// does not change it, and a session passes its own on to a sign-in that
// builds on it (step-up), so that the upstream's logout ends that one too.
func TestRecordUpstreamSession(t *testing.T) {
	up := &storage.UpstreamSession{Upstream: "corp", Subject: "s", SID: "x"}
	at := time.Unix(1_800_000_000, 0)
	a := &Attempt{Proved: []Proof{{Step: "upstream:corp", Kind: FirstFactor, AMR: []string{AMRFed}, At: at, Upstream: up},
		{Step: "totp", Kind: SecondFactor, AMR: []string{"otp"}, At: at}}}
	if rec := a.Record(); rec.Upstream != *up {
		t.Fatalf("record %+v", rec.Upstream)
	}
	if rec := (&Attempt{Proved: []Proof{{Step: "password", Kind: FirstFactor, AMR: []string{AMRPassword}, At: at}}}).Record(); rec.Upstream != (storage.UpstreamSession{}) {
		t.Fatalf("a password sign-in has an upstream session: %+v", rec.Upstream)
	}
	proofs := SessionProofs(&storage.Session{AMR: []string{AMRFed}, AuthTime: at, Upstream: *up})
	if rec := (&Attempt{Proved: proofs}).Record(); rec.Upstream != *up {
		t.Fatalf("from a session: %+v", rec.Upstream)
	}
	if p := SessionProofs(&storage.Session{AMR: []string{AMRPassword}, AuthTime: at}); p[0].Upstream != nil {
		t.Fatalf("a local session's proof has an upstream session: %+v", p[0].Upstream)
	}
}

// askedStep is a fakeStep that counts how often it is asked whether it is
// offered (each time one store read in the real steps).
type askedStep struct {
	fakeStep
	fallback bool
	asked    *int
}

func (s askedStep) Offered(ctx context.Context, a *Attempt) (bool, error) {
	*s.asked++
	return s.fakeStep.Offered(ctx, a)
}

func (s askedStep) Fallback() bool { return s.fallback }

// TestNextAsksEnrolmentOnlyWhenItMatters: whether a person enrolled a
// second factor is asked of the steps (a store read each) only when the
// answer can change the step asked next, never of a fallback (recovery
// codes), and the step asked is the same as if every step had been asked.
func TestNextAsksEnrolmentOnlyWhenItMatters(t *testing.T) {
	pwd := fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}
	user := &storage.User{ID: "u"}
	pwdSess := SessionProofs(&storage.Session{AMR: []string{"pwd"}, AuthTime: t0})
	mfaSess := SessionProofs(&storage.Session{AMR: []string{"pwd", "otp", "mfa"}, AuthTime: t0})
	app := &storage.AuthRequest{ID: "r", ClientID: "app", MaxAge: -1}
	for _, tc := range []struct {
		name              string
		policy            Policy
		req               *storage.AuthRequest
		user              *storage.User
		proved            []Proof
		totp, recovery    bool // offered
		want              string
		wantErr           error
		wantAsked         int // of the totp step
		wantFallbackAsked int // of the recovery step
	}{
		{name: "nothing enrolled: asked once, the fallback not", policy: Policy{AskEnrolled: true}, req: app, user: user, proved: pwdSess,
			wantAsked: 1},
		{name: "enrolled: the second factor is asked for", policy: Policy{AskEnrolled: true}, req: app, user: user, proved: pwdSess,
			totp: true, recovery: true, want: "totp", wantAsked: 2},
		{name: "a fallback alone enrols nobody", policy: Policy{AskEnrolled: true}, req: app, user: user, proved: pwdSess,
			recovery: true, wantAsked: 1},
		{name: "second factor proved: nothing asked", policy: Policy{AskEnrolled: true}, req: app, user: user, proved: mfaSess,
			totp: true},
		{name: "first factor missing: nothing asked", policy: Policy{AskEnrolled: true}, req: app, totp: true, want: "password"},
		{name: "first factor stale: nothing asked", policy: Policy{AskEnrolled: true},
			req:  &storage.AuthRequest{ID: "r", ClientID: "app", MaxAge: -1, Prompt: "login", CreatedAt: t0.Add(time.Second)},
			user: user, proved: pwdSess, totp: true, want: "password"},
		{name: "policy off: nothing asked", req: app, user: user, proved: pwdSess, totp: true},
		{name: "account pages, policy off: asked", user: user, proved: pwdSess, totp: true, want: "totp", wantAsked: 2},
		{name: "required anyway: asked only to pick the step", policy: Policy{SecondFactor: true, AskEnrolled: true}, req: app,
			user: user, proved: pwdSess, totp: true, want: "totp", wantAsked: 1},
		{name: "required, nothing enrolled", policy: Policy{SecondFactor: true, AskEnrolled: true}, req: app, user: user, proved: pwdSess,
			wantErr: ErrNoStep, wantAsked: 1, wantFallbackAsked: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked, fallbackAsked int
			totp := askedStep{fakeStep: fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}, offered: tc.totp}, asked: &asked}
			recovery := askedStep{fakeStep: fakeStep{name: "recovery", kind: SecondFactor, amr: []string{AMROTP}, offered: tc.recovery},
				fallback: true, asked: &fallbackAsked}
			p := &Pipeline{Policy: tc.policy, Steps: []Step{pwd, totp, recovery}, Now: func() time.Time { return t0.Add(time.Minute) }}
			s, err := p.Check(context.Background(), &Attempt{Request: tc.req, User: tc.user, Proved: tc.proved})
			got := ""
			if s != nil {
				got = s.Name()
			}
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("step %q, err %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if asked != tc.wantAsked || fallbackAsked != tc.wantFallbackAsked {
				t.Errorf("asked %d and the fallback %d times; want %d and %d", asked, fallbackAsked, tc.wantAsked, tc.wantFallbackAsked)
			}
		})
	}
}

// enrolledStep is a second-factor step that tells from the enrolment
// whether it is offered (EnrolledStep), and counts how often it is asked
// to read the store itself instead.
type enrolledStep struct {
	fakeStep
	has   func(storage.Enrolment) bool
	asked *int
}

func (s enrolledStep) Offered(context.Context, *Attempt) (bool, error) {
	*s.asked++
	return s.offered, nil
}

func (s enrolledStep) OfferedFor(_ context.Context, a *Attempt, e storage.Enrolment) (bool, error) {
	return a.User != nil && s.has(e), nil
}

// TestEnrolmentReadOnce: with Pipeline.Enrolment, whether a person
// enrolled a second factor is one read for every step, and the answer is
// the one the steps' own reads give: a step turned off (passkeys without
// a relying party) enrols nobody whatever the store holds, and a failed
// read is an error, never "not enrolled".
func TestEnrolmentReadOnce(t *testing.T) {
	pwd := fakeStep{name: "password", kind: FirstFactor, amr: []string{AMRPassword}, offered: true}
	app := &storage.AuthRequest{ID: "r", ClientID: "app", MaxAge: -1}
	proved := SessionProofs(&storage.Session{AMR: []string{"pwd"}, AuthTime: t0})
	errRead := errors.New("store down")
	for _, tc := range []struct {
		name       string
		enrolment  storage.Enrolment
		readErr    error
		passkeysOn bool
		want       string
		wantErr    error
	}{
		{name: "nothing enrolled", passkeysOn: true},
		{name: "totp", enrolment: storage.Enrolment{TOTP: true}, passkeysOn: true, want: "totp"},
		{name: "passkey", enrolment: storage.Enrolment{Passkeys: true}, passkeysOn: true, want: "passkey"},
		{name: "passkey, passkeys off", enrolment: storage.Enrolment{Passkeys: true}},
		{name: "both, passkeys off", enrolment: storage.Enrolment{TOTP: true, Passkeys: true}, want: "totp"},
		{name: "read fails", readErr: errRead, passkeysOn: true, wantErr: errRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reads, asked int
			e := tc.enrolment
			passkey := enrolledStep{fakeStep{name: "passkey", kind: SecondFactor, amr: []string{AMRHardware}, offered: tc.passkeysOn && e.Passkeys},
				func(e storage.Enrolment) bool { return tc.passkeysOn && e.Passkeys }, &asked}
			totp := enrolledStep{fakeStep{name: "totp", kind: SecondFactor, amr: []string{AMROTP}, offered: e.TOTP},
				func(e storage.Enrolment) bool { return e.TOTP }, &asked}
			p := &Pipeline{Policy: Policy{AskEnrolled: true}, Steps: []Step{pwd, passkey, totp}, Now: func() time.Time { return t0.Add(time.Minute) },
				Enrolment: func(_ context.Context, userID string) (storage.Enrolment, error) {
					reads++
					if userID != "u" {
						t.Errorf("enrolment of %q, want u", userID)
					}
					return e, tc.readErr
				}}
			s, err := p.Check(context.Background(), &Attempt{Request: app, User: &storage.User{ID: "u"}, Proved: proved})
			got := ""
			if s != nil {
				got = s.Name()
			}
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("step %q, err %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if reads != 1 {
				t.Errorf("%d enrolment reads, want 1", reads)
			}
			if tc.want == "" && asked != 0 {
				t.Errorf("steps read the store %d times beside the enrolment", asked)
			}
		})
	}
}
