// Command pusher drives client_golang's push package from the cronpush tests: one invocation is
// one Push (PUT), Add (POST) or Delete, with the grouping key and metrics given as flags, so a
// test can check the gateway between steps. It prints "ok" on success; on failure it prints the
// client's error to stderr and exits 1, the way a batch job would notice a refused push.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// pairs collects repeated name=value flags in order.
type pairs [][2]string

func (p *pairs) String() string { return fmt.Sprint(*p) }

func (p *pairs) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q is not name=value", s)
	}
	*p = append(*p, [2]string{name, value})
	return nil
}

func floats(s string) []float64 {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			fail(fmt.Errorf("bad number %q: %w", f, err))
		}
		out = append(out, v)
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pusher:", err)
	os.Exit(1)
}

func main() {
	url := flag.String("url", "", "gateway URL")
	job := flag.String("job", "pusher", "job name")
	op := flag.String("op", "push", "push (PUT), add (POST) or delete (DELETE)")
	var groups, gauges, counters, histograms, summaries, natives pairs
	flag.Var(&groups, "group", "grouping label name=value (repeatable)")
	flag.Var(&gauges, "gauge", "gauge name=value (repeatable)")
	flag.Var(&counters, "counter", "counter name=value (repeatable)")
	flag.Var(&histograms, "histogram", "classic histogram (buckets 0.1,1,10) name=v1,v2,... (repeatable)")
	flag.Var(&summaries, "summary", "summary (quantiles 0.5,0.9) name=v1,v2,... (repeatable)")
	flag.Var(&natives, "native", "native histogram (factor 1.1, no classic buckets) name=v1,v2,... (repeatable)")
	flag.Parse()

	registry := prometheus.NewRegistry()
	for _, g := range gauges {
		m := prometheus.NewGauge(prometheus.GaugeOpts{Name: g[0], Help: "A gauge pushed by the Go test pusher."})
		m.Set(floats(g[1])[0])
		registry.MustRegister(m)
	}
	for _, c := range counters {
		m := prometheus.NewCounter(prometheus.CounterOpts{Name: c[0], Help: "A counter pushed by the Go test pusher."})
		m.Add(floats(c[1])[0])
		registry.MustRegister(m)
	}
	for _, h := range histograms {
		m := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    h[0],
			Help:    "A histogram pushed by the Go test pusher.",
			Buckets: []float64{0.1, 1, 10},
		})
		for _, v := range floats(h[1]) {
			m.Observe(v)
		}
		registry.MustRegister(m)
	}
	for _, s := range summaries {
		m := prometheus.NewSummary(prometheus.SummaryOpts{
			Name:       s[0],
			Help:       "A summary pushed by the Go test pusher.",
			Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01},
		})
		for _, v := range floats(s[1]) {
			m.Observe(v)
		}
		registry.MustRegister(m)
	}
	for _, n := range natives {
		m := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                        n[0],
			Help:                        "A native histogram pushed by the Go test pusher.",
			NativeHistogramBucketFactor: 1.1,
		})
		for _, v := range floats(n[1]) {
			m.Observe(v)
		}
		registry.MustRegister(m)
	}

	pusher := push.New(*url, *job).Gatherer(registry)
	for _, g := range groups {
		pusher = pusher.Grouping(g[0], g[1])
	}
	var err error
	switch *op {
	case "push":
		err = pusher.Push()
	case "add":
		err = pusher.Add()
	case "delete":
		err = pusher.Delete()
	default:
		err = fmt.Errorf("unknown -op %q", *op)
	}
	if err != nil {
		fail(err)
	}
	fmt.Println("ok")
}
