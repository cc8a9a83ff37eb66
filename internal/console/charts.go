package console

import (
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/metrics"
	"github.com/bawwab/bawwab/internal/ui"
)

// Chart is one series over a span, drawn as an inline SVG bar chart: the
// bars' geometry is computed here, the template only writes it out. In
// Arabic the time runs from right to left, as the page reads.
type Chart struct {
	ID, Key, Span string
	Total, Max    int
	Bars          []Bar
	// Start and End label the axis' two ends: its oldest bar and now;
	// StartX and EndX are where, with their anchors.
	Start, End             string
	StartX, EndX           int
	StartAnchor, EndAnchor string
}

// Bar is one bar: its count, its box and its tooltip.
type Bar struct {
	N          int
	X, Y, W, H float64
	Title      string
}

// The charts' box, in SVG units.
const (
	chartW = 480
	chartH = 100
)

// chartSeries are the series drawn, each over the last hour (by the
// minute) and the last day (by the hour).
var chartSeries = []struct {
	id, key string
	series  int
}{
	{"tokens", "console.chart.tokens", metrics.Tokens},
	{"logins", "console.chart.logins", metrics.Logins},
	{"failures", "console.chart.failures", metrics.Failures},
	{"attacks", "console.chart.attacks", metrics.Attacks},
}

// charts draws every series over the hour and the day, in lang.
func (c *Console) charts(lang string) []Chart {
	if c.Recent == nil {
		return nil
	}
	now := c.Recent.Now().UTC().Truncate(time.Minute)
	var out []Chart
	for _, s := range chartSeries {
		mins := c.Recent.PerMinute(s.series, metrics.HistoryMinutes)
		out = append(out,
			drawChart(lang, s.id+"-hour", s.key, "console.chart.hour", mins[len(mins)-60:], now, time.Minute),
			drawChart(lang, s.id+"-day", s.key, "console.chart.day", perHour(mins), now.Truncate(time.Hour), time.Hour))
	}
	return out
}

// perHour sums a day of minutes into 24 hours, the current hour last.
func perHour(mins []int) []int {
	out := make([]int, 24)
	for i := range mins {
		// The last slot is the current minute; hours are counted back
		// from it in sixties.
		h := 23 - (len(mins)-1-i)/60
		if h >= 0 {
			out[h] += mins[i]
		}
	}
	return out
}

// drawChart lays counts (oldest first, each of step, the last one
// starting at last) out as bars.
func drawChart(lang, id, key, span string, counts []int, last time.Time, step time.Duration) Chart {
	ch := Chart{ID: id, Key: key, Span: span, Max: 1}
	for _, n := range counts {
		ch.Total += n
		ch.Max = max(ch.Max, n)
	}
	rtl := lang == "ar"
	w := float64(chartW) / float64(len(counts))
	for i, n := range counts {
		x := float64(i) * w
		if rtl {
			x = chartW - x - w
		}
		h := float64(n) / float64(ch.Max) * chartH
		at := last.Add(-time.Duration(len(counts)-1-i) * step)
		ch.Bars = append(ch.Bars, Bar{N: n, X: x + w*0.1, Y: chartH - h, W: w * 0.8, H: h,
			Title: ui.T(lang, "console.chart.bar", n, at.Format("15:04"))})
	}
	ch.Start, ch.End = last.Add(-time.Duration(len(counts)-1)*step).Format("15:04"), ui.T(lang, "console.chart.now")
	ch.StartX, ch.EndX, ch.StartAnchor, ch.EndAnchor = 0, chartW, "start", "end"
	if rtl {
		ch.StartX, ch.EndX, ch.StartAnchor, ch.EndAnchor = chartW, 0, "end", "start"
	}
	return ch
}

// Height is the chart's SVG height: the bars and the axis labels.
func (Chart) Height() string { return strconv.Itoa(chartH + 18) }
