package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
)

// ErrNoStep means the policy needs a kind of step that no registered step
// offers this person (a second factor they never enrolled).
var ErrNoStep = errors.New("signin: no step can prove what the policy needs")

// ErrNoProgress means a sign-in needs more than one request but the
// pipeline has nowhere to keep what was proved in between.
var ErrNoProgress = errors.New("signin: a sign-in of several steps needs a Progress store")

// Progress keeps what an unfinished sign-in proved between requests, bound
// to the browser, so that the person passes a second step after the first.
// It never holds a session: nothing proved counts until the pipeline
// returns a Record.
type Progress interface {
	// Load restores a.User and a.Proved of the browser's unfinished
	// sign-in for a.Request, if any.
	Load(ctx context.Context, r *http.Request, a *Attempt) error
	// Save keeps a.User and a.Proved for the next request.
	Save(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt) error
	// Clear forgets the browser's unfinished sign-in.
	Clear(ctx context.Context, w http.ResponseWriter, r *http.Request) error
}

// Pipeline drives an [Attempt] through the steps its [Policy] needs.
type Pipeline struct {
	Policy Policy
	// Steps are tried in order within a kind: the first one offered is
	// shown unless the person chose another (Attempt.Choice).
	Steps []Step
	// More, when set, returns steps that change while the server runs
	// (package upstream's, which an operator adds and disables), tried
	// after Steps.
	More func(ctx context.Context) ([]Step, error)
	// Progress keeps unfinished sign-ins of several steps; nil allows
	// sign-ins of one step only.
	Progress Progress
	Now      func() time.Time
	// Finished, when set, is told of every finished sign-in before its
	// Record is returned (package upstream links an account the person
	// just proved control of).
	Finished func(ctx context.Context, w http.ResponseWriter, r *http.Request, rec *Record) error
	// Enrolment, when set, reads which second factors a person enrolled
	// (storage.Factors.Enrolment): the pipeline then reads it once to ask
	// every EnrolledStep whether it is offered, instead of each step
	// reading the store.
	Enrolment func(ctx context.Context, userID string) (storage.Enrolment, error)
}

// EnrolledStep is a second-factor step that can tell from a person's
// enrolment, read once for all steps, whether it is offered: whether a
// person enrolled any second factor is asked on every request of a
// signed-in person (Policy.AskEnrolled), and so costs one store read
// whatever the number of steps.
type EnrolledStep interface {
	Step
	// OfferedFor reports what Offered reports, given the enrolment of
	// a.User.
	OfferedFor(ctx context.Context, a *Attempt, e storage.Enrolment) (bool, error)
}

// ChoiceField is the form field that names the step a form answers.
const ChoiceField = "step"

// Next returns the step a must pass next, or nil when a has proved all
// that the policy needs for d.
func (p *Pipeline) Next(ctx context.Context, a *Attempt, d Demand) (Step, error) {
	needed, err := p.needed(ctx, a, d)
	if err != nil || len(needed) == 0 {
		return nil, err
	}
	steps, err := p.steps(ctx)
	if err != nil {
		return nil, err
	}
	var first Step
	for _, s := range steps {
		if s.Kind() != needed[0] { // a step proved already is asked again only if its proof went stale
			continue
		}
		ok, err := s.Offered(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("signin: step %s: %w", s.Name(), err)
		}
		if !ok {
			continue
		}
		if a.Choice == "" || s.Name() == a.Choice {
			return s, nil // without a choice, the first offered: the others need not be asked
		}
		if first == nil {
			first = s
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%w (%s factor)", ErrNoStep, needed[0])
	}
	return first, nil
}

// Check returns the step that the person of a, with what they proved
// (SessionProofs of their session), must pass before a's request may go
// on; nil when nothing more is needed. ErrNoStep means the request needs
// a second factor the person never enrolled.
func (p *Pipeline) Check(ctx context.Context, a *Attempt) (Step, error) {
	return p.Next(ctx, a, DemandFor(a.Request, a.Client))
}

// SessionStep names the proofs that SessionProofs carries over from a
// session.
const SessionStep = "session"

// SessionProofs returns what the sign-in behind a session proved, as of
// its auth_time: a first factor, and a second one when its amr says mfa
// (RFC 8176 §2: a passkey that verified its user proves both).
func SessionProofs(s *storage.Session) []Proof {
	if s == nil {
		return nil
	}
	var first []string
	for _, m := range s.AMR {
		if m != AMRMFA {
			first = append(first, m)
		}
	}
	if len(first) == 0 {
		first = []string{AMRPassword}
	}
	out := []Proof{{Step: "session", Kind: FirstFactor, AMR: first, At: s.AuthTime}}
	if s.Upstream.Upstream != "" { // a session that ends with its upstream session passes that on
		up := s.Upstream
		out[0].Upstream = &up
	}
	if slices.Contains(s.AMR, AMRMFA) {
		out = append(out, Proof{Step: SessionStep, Kind: SecondFactor, AMR: []string{AMRMFA}, At: s.AuthTime})
	}
	return out
}

// needed returns the kinds of step a still needs for d, asking the steps
// whether the person enrolled a second factor (Policy.AskEnrolled, and
// the account pages) only when the answer can change the step asked
// next: a person who still needs a first factor, or a second one
// whatever they enrolled, or who proved a second factor already, is
// asked the same step either way. Enrolment is one store read per
// second-factor step on every request of a signed-in person.
func (p *Pipeline) needed(ctx context.Context, a *Attempt, d Demand) ([]Kind, error) {
	now := p.Now()
	needed := p.Policy.Needed(d, a.Proved, now)
	if len(needed) > 0 || d.Enrolled || a.User == nil || !p.Policy.asksEnrolled(d) {
		return needed, nil
	}
	d.Enrolled = true
	if len(p.Policy.Needed(d, a.Proved, now)) == 0 {
		return nil, nil
	}
	enrolled, err := p.enrolled(ctx, a)
	if err != nil || !enrolled {
		return nil, err
	}
	return p.Policy.Needed(d, a.Proved, now), nil
}

// Fallback is a second-factor step that stands in for another one (recovery
// codes for a lost authenticator): it is offered only to a person who
// enrolled another second factor, so it never makes one enrolled by
// itself, and the pipeline does not ask it whether one is.
type Fallback interface {
	Step
	// Fallback reports whether the step is offered only beside another.
	Fallback() bool
}

// enrolled reports whether a second-factor step is offered to the person
// a identified: a factor they enrolled.
func (p *Pipeline) enrolled(ctx context.Context, a *Attempt) (bool, error) {
	steps, err := p.steps(ctx)
	if err != nil {
		return false, err
	}
	var e *storage.Enrolment
	for _, s := range steps {
		if f, ok := s.(Fallback); s.Kind() != SecondFactor || ok && f.Fallback() {
			continue
		}
		if es, ok := s.(EnrolledStep); ok && p.Enrolment != nil {
			if e == nil {
				read, err := p.Enrolment(ctx, a.User.ID)
				if err != nil {
					return false, err
				}
				e = &read
			}
			if ok, err := es.OfferedFor(ctx, a, *e); err != nil || ok {
				return ok, err
			}
			continue
		}
		ok, err := s.Offered(ctx, a)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// Show writes the page of the step a needs next (GET /login).
func (p *Pipeline) Show(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt) error {
	if err := p.load(ctx, r, a); err != nil {
		return err
	}
	s, err := p.Next(ctx, a, DemandFor(a.Request, a.Client))
	if err != nil {
		return err
	}
	if s == nil { // nothing more to prove: start over, a fresh sign-in
		a.User, a.Proved = nil, nil
		if s, err = p.Next(ctx, a, DemandFor(a.Request, a.Client)); err != nil {
			return err
		}
		if s == nil {
			return ErrNoStep
		}
	}
	a.Status = cmpStatus(a.Status)
	return p.show(ctx, w, r, a, s)
}

// show writes the page of s, with the remote steps offered beside a
// first factor.
func (p *Pipeline) show(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt, s Step) error {
	a.Elsewhere = nil
	steps, err := p.steps(ctx)
	if err != nil {
		return err
	}
	if s.Kind() == FirstFactor {
		for _, o := range steps {
			rs, ok := o.(Remote)
			if !ok || rs.Name() == s.Name() || rs.Kind() != FirstFactor {
				continue
			}
			if on, err := rs.Offered(ctx, a); err != nil {
				return err
			} else if on {
				a.Elsewhere = append(a.Elsewhere, option(rs, a.Lang))
			}
		}
	}
	s.Show(w, r, a)
	return nil
}

// Return finishes a remote step when the browser comes back (the
// upstream's redirect to its callback), as Submit finishes a posted one.
// The step must be one the policy still needs.
func (p *Pipeline) Return(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt, rs Remote) (*Record, error) {
	if err := p.load(ctx, r, a); err != nil {
		return nil, err
	}
	a.Choice = rs.Name()
	s, err := p.Next(ctx, a, DemandOf(a.Request))
	if err != nil {
		return nil, err
	}
	if s == nil || s.Name() != rs.Name() { // finished already, or a step the policy does not need now: afresh
		a.User, a.Proved = nil, nil
	}
	out, err := rs.Return(ctx, w, r, a)
	if err != nil {
		return nil, err
	}
	return p.outcome(ctx, w, r, a, rs, out)
}

// Remote returns the remote step named name, or nil.
func (p *Pipeline) Remote(ctx context.Context, name string) (Remote, error) {
	steps, err := p.steps(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range steps {
		if rs, ok := s.(Remote); ok && s.Name() == name {
			return rs, nil
		}
	}
	return nil, nil
}

// steps returns Steps and, when set, More's.
func (p *Pipeline) steps(ctx context.Context) ([]Step, error) {
	if p.More == nil {
		return p.Steps, nil
	}
	more, err := p.More(ctx)
	if err != nil {
		return nil, err
	}
	return append(slices.Clip(p.Steps), more...), nil
}

// Submit verifies the step a posted form answers (POST /login). When the
// sign-in is complete it returns the Record and writes nothing; otherwise
// it has written the response (the step again with its failure, or the
// next step) and returns nil. An error is the server's, not the person's.
func (p *Pipeline) Submit(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt) (*Record, error) {
	if err := p.load(ctx, r, a); err != nil {
		return nil, err
	}
	s, err := p.Next(ctx, a, DemandFor(a.Request, a.Client))
	if err != nil {
		return nil, err
	}
	if s == nil { // a form posted after the sign-in finished: verify it afresh
		a.User, a.Proved = nil, nil
		if s, err = p.Next(ctx, a, DemandFor(a.Request, a.Client)); err != nil {
			return nil, err
		}
	}
	if rs, ok := s.(Remote); ok && s.Name() == a.Choice {
		return nil, rs.Leave(ctx, w, r, a)
	}
	out, err := s.Verify(ctx, r, a)
	if err != nil {
		return nil, err
	}
	return p.outcome(ctx, w, r, a, s, out)
}

// outcome finishes a step's verification: the next step or the Record
// after a proof, else the step again with its failure.
func (p *Pipeline) outcome(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt, s Step, out Outcome) (*Record, error) {
	switch out.Result {
	case Proved:
		return p.proved(ctx, w, r, a, s, out)
	case Throttled:
		secs := ratelimit.RetrySeconds(out.Retry)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		a.Status, a.Message, a.MessageArgs = http.StatusTooManyRequests, out.Message, []any{secs}
	default:
		a.Status, a.Message, a.MessageArgs = http.StatusUnauthorized, out.Message, out.Args
	}
	return nil, p.show(ctx, w, r, a, s)
}

// proved records that s proved its amr values, and finishes the sign-in
// or shows the next step.
func (p *Pipeline) proved(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt, s Step, out Outcome) (*Record, error) {
	if s.Kind() == FirstFactor {
		if out.User == nil {
			return nil, fmt.Errorf("signin: first factor %s proved nobody", s.Name())
		}
		if a.User != nil && a.User.ID != out.User.ID { // another person: what the first proved is theirs
			a.Proved = nil
		}
		a.User = out.User
	}
	if a.User != nil && a.User.Disabled {
		return nil, p.refuseDisabled(ctx, w, r, a, s)
	}
	a.Proved = append(a.Proved, Proof{Step: s.Name(), Kind: s.Kind(), AMR: s.Proves(), At: p.Now(), Upstream: out.Upstream})
	next, err := p.Next(ctx, a, DemandFor(a.Request, a.Client))
	if err != nil {
		return nil, err
	}
	if next == nil {
		// What went stale counts for nothing, and is not claimed either.
		d, now := DemandFor(a.Request, a.Client), p.Now()
		a.Proved = slices.DeleteFunc(a.Proved, func(pr Proof) bool { return !d.fresh(pr, now) })
		if p.Progress != nil {
			if err := p.Progress.Clear(ctx, w, r); err != nil {
				return nil, err
			}
		}
		rec := a.Record()
		if p.Finished != nil {
			if err := p.Finished(ctx, w, r, &rec); err != nil {
				return nil, err
			}
		}
		return &rec, nil
	}
	if p.Progress == nil {
		return nil, ErrNoProgress
	}
	if err := p.Progress.Save(ctx, w, r, a); err != nil {
		return nil, err
	}
	a.Status, a.Message, a.MessageArgs, a.Choice = http.StatusOK, "", nil, ""
	return nil, p.show(ctx, w, r, a, next)
}

// refuseDisabled ends the sign-in of a user an operator disabled: the
// step shows that the account is disabled, whatever else was proved.
func (p *Pipeline) refuseDisabled(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt, s Step) error {
	if p.Progress != nil {
		if err := p.Progress.Clear(ctx, w, r); err != nil {
			return err
		}
	}
	a.User, a.Proved = nil, nil
	a.Status, a.Message, a.MessageArgs = http.StatusForbidden, "login.disabled", nil
	s.Show(w, r, a)
	return nil
}

// load restores the browser's unfinished sign-in, and drops proofs of a
// session that is not the browser's any more (signed out, or another
// person's): what a session proved counts only alongside that session.
func (p *Pipeline) load(ctx context.Context, r *http.Request, a *Attempt) error {
	if p.Progress != nil {
		if err := p.Progress.Load(ctx, r, a); err != nil {
			return err
		}
	}
	if a.User == nil || a.User.ID != a.SessionUser {
		a.Proved = slices.DeleteFunc(a.Proved, func(pr Proof) bool { return pr.Step == SessionStep })
	}
	return nil
}

func cmpStatus(s int) int {
	if s == 0 {
		return http.StatusOK
	}
	return s
}

// Record returns what a has proved: its amr values in order (with "mfa"
// once a first and a second factor were proved, RFC 8176 §2), the acr
// reached, and the time of the last proof.
func (a *Attempt) Record() Record {
	rec := Record{ACR: ACRPassword}
	if a.Request != nil {
		rec.Request = a.Request.ID
	}
	if a.User != nil {
		rec.UserID = a.User.ID
	}
	kinds := map[Kind]bool{}
	for _, pr := range a.Proved {
		rec.Steps = append(rec.Steps, pr.Step)
		for _, m := range pr.AMR {
			if !slices.Contains(rec.AMR, m) {
				rec.AMR = append(rec.AMR, m)
			}
		}
		kinds[pr.Kind] = true
		if pr.Upstream != nil && pr.Kind == FirstFactor {
			rec.Upstream = *pr.Upstream
		}
		if pr.At.After(rec.AuthTime) {
			rec.AuthTime = pr.At
		}
	}
	if kinds[FirstFactor] && kinds[SecondFactor] {
		rec.ACR = ACRMFA
		if !slices.Contains(rec.AMR, AMRMFA) {
			rec.AMR = append(rec.AMR, AMRMFA)
		}
	}
	return rec
}

// option is the button of a remote step in lang.
func option(rs Remote, lang string) Option {
	o := Option{Step: rs.Name(), Label: rs.Label(lang)}
	if ic, ok := rs.(Iconed); ok {
		o.Icon = ic.Icon()
	}
	return o
}
