// Package metrics exposes bawwab's Prometheus metrics: requests and their
// latency per endpoint and status, tokens issued per grant type, audit
// events (attacks among them) per type, the latency of each store
// operation, whether the store commits, rows pruned and connections shed,
// beside the Go runtime and process collectors.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors of one server.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	events   *prometheus.CounterVec
	attacks  *prometheus.CounterVec
	store    *prometheus.HistogramVec
	shed     prometheus.Counter
	pruned   prometheus.Counter
	commits  prometheus.Gauge
	// Recent counts some of the counters per minute over the last day.
	Recent *History
}

// New registers every collector on a fresh registry; now is the clock of
// the recent history.
func New(now func() time.Time) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(), Recent: newHistory(now),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bawwab_http_requests_total",
			Help: "HTTP requests by endpoint (route pattern) and status code."}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bawwab_http_request_duration_seconds",
			Help:    "HTTP request latency by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"endpoint"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bawwab_tokens_issued_total",
			Help: "Successful token responses by grant type."}, []string{"grant_type"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bawwab_audit_events_total",
			Help: "Audit events by type."}, []string{"type"}),
		attacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bawwab_attacks_detected_total",
			Help: "Detected attacks (code replay, refresh token reuse, brute force, CSRF) by type."}, []string{"type"}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bawwab_store_operation_duration_seconds",
			Help:    "Store statement and transaction latency by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"op"}),
	}
	m.shed = prometheus.NewCounter(prometheus.CounterOpts{Name: "bawwab_connections_shed_total",
		Help: "Client connections answered 503 at once because max_connections were open."})
	m.pruned = prometheus.NewCounter(prometheus.CounterOpts{Name: "bawwab_store_pruned_rows_total",
		Help: "Ended rows (expired, rotated, revoked, past retention) deleted by pruning."})
	m.commits = prometheus.NewGauge(prometheus.GaugeOpts{Name: "bawwab_store_commits",
		Help: "1 while the store committed the last readiness write probe, 0 while it cannot commit."})
	m.reg.MustRegister(m.requests, m.duration, m.tokens, m.events, m.attacks, m.store, m.shed, m.pruned, m.commits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Middleware counts and times each request of mux by its route pattern
// (never by raw path, which would let clients create series).
func (m *Metrics) Middleware(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(sw, r)
		endpoint := r.Pattern // set by the mux on r
		if endpoint == "" {
			endpoint = "unmatched"
		}
		m.requests.WithLabelValues(endpoint, strconv.Itoa(sw.status)).Inc()
		m.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	})
}

// ConnectionShed counts a connection refused at the connection cap.
func (m *Metrics) ConnectionShed() { m.shed.Inc() }

// Pruned counts rows deleted by pruning.
func (m *Metrics) Pruned(n int64) { m.pruned.Add(float64(n)) }

// StoreCommits records the result of a readiness write probe.
func (m *Metrics) StoreCommits(ok bool) {
	if ok {
		m.commits.Set(1)
	} else {
		m.commits.Set(0)
	}
}

// TokenIssued counts a token response.
func (m *Metrics) TokenIssued(grantType string) {
	m.tokens.WithLabelValues(grantType).Inc()
	m.Recent.add(Tokens)
}

// AuditEvent counts an audit event; attack reports whether it is one.
func (m *Metrics) AuditEvent(typ string, attack bool) {
	m.events.WithLabelValues(typ).Inc()
	switch typ {
	case "login":
		m.Recent.add(Logins)
	case "login_failed":
		m.Recent.add(Failures)
	}
	if attack {
		m.attacks.WithLabelValues(typ).Inc()
		m.Recent.add(Attacks)
	}
}

// StoreOp records the latency of one store operation.
func (m *Metrics) StoreOp(op string, d time.Duration) {
	m.store.WithLabelValues(op).Observe(d.Seconds())
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
