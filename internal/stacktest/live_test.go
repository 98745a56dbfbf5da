package stacktest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// checkRulesHealthy waits until Prometheus has evaluated every shipped rule
// and checks none failed (a query error, a many-to-many join).
func checkRulesHealthy(t *testing.T, p *testutil.Prometheus) {
	t.Helper()
	want := 0
	for _, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			want += len(g.Rules)
		}
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		var res struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError, Type string
				}
			}
		}
		if err := p.API("/api/v1/rules", nil, &res); err != nil {
			return err
		}
		var errs []error
		n := 0
		for _, g := range res.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health != "ok" {
					errs = append(errs, fmt.Errorf("%s rule %s: health %q %s", r.Type, r.Name, r.Health, r.LastError))
				}
			}
		}
		if n != want {
			errs = append(errs, fmt.Errorf("Prometheus loaded %d rules, the files have %d", n, want))
		}
		return errors.Join(errs...)
	})
}

// checkExpressions runs every shipped PromQL expression against the live
// Prometheus. Each must parse. Each whose selectors all match series must
// return data; one with a selector that matches nothing here (speed-test
// panels, skipped runs) is only parsed, and logged.
func checkExpressions(t *testing.T, p *testutil.Prometheus) {
	t.Helper()
	exprs, errs := shippedExprs(t)
	for _, err := range errs {
		t.Error(err)
	}
	type state struct {
		e        promExpr
		empty    []string // selectors without series
		hasData  bool
		parseErr error
	}
	states := make([]*state, len(exprs))
	for i, e := range exprs {
		states[i] = &state{e: e}
	}
	waitRecordings(t, p)
	pending := func() []*state {
		var out []*state
		for _, s := range states {
			if s.parseErr == nil && !s.hasData && len(s.empty) == 0 {
				out = append(out, s)
			}
		}
		return out
	}
	err := testutil.Poll(60*time.Second, func() error {
		for _, s := range states {
			if s.parseErr != nil || s.hasData {
				continue
			}
			v, err := p.Query(s.e.expr)
			if err != nil {
				if strings.Contains(err.Error(), "bad_data") || strings.Contains(err.Error(), "parse error") {
					s.parseErr = err
				}
				continue
			}
			if len(v) > 0 {
				s.hasData, s.empty = true, nil
				continue
			}
			s.empty = nil
			for _, sel := range parts(s.e.expr).selectors {
				if n, err := queryCount(p, "count("+sel.text+")"); err == nil && n == 0 {
					s.empty = append(s.empty, sel.text)
				}
			}
		}
		if n := len(pending()); n > 0 {
			return fmt.Errorf("%d expressions whose selectors all match series still return nothing", n)
		}
		return nil
	})
	withData, parseOnly := 0, 0
	for _, s := range states {
		switch {
		case s.parseErr != nil:
			t.Errorf("%s: %v", s.e.where, s.parseErr)
		case s.hasData:
			withData++
		case len(s.empty) > 0:
			parseOnly++
			t.Logf("parsed, no data expected here: %s: no series for %v", s.e.where, s.empty)
		}
	}
	if err != nil {
		for _, s := range pending() {
			t.Errorf("%s: returns no data although every selector matches series:\n%s", s.e.where, s.e.expr)
		}
	}
	t.Logf("%d expressions: %d returned data, %d only parsed (selectors without series here)", len(states), withData, parseOnly)
}

// orBranches splits an expression at its top-level "or" (outside brackets
// and strings): a recording such as an RTT quantile from classic buckets or
// else from native histograms has data when every input of one branch has.
func orBranches(expr string) []string {
	masked := []byte(reString.ReplaceAllStringFunc(expr, func(s string) string { return strings.Repeat("_", len(s)) }))
	var out []string
	depth, start := 0, 0
	for i, c := range masked {
		switch c {
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		}
		word := depth == 0 && i+2 <= len(masked) && string(masked[i:i+2]) == "or" &&
			(i == 0 || !isIdentByte(masked[i-1])) && (i+2 == len(masked) || !isIdentByte(masked[i+2]))
		if word {
			out = append(out, expr[start:i])
			start = i + 2
		}
	}
	return append(out, expr[start:])
}

func isIdentByte(c byte) bool {
	return c == '_' || c == ':' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func TestOrBranches(t *testing.T) {
	got := orBranches(`histogram_quantile(0.5, rate(a_bucket[5m])) or histogram_quantile(0.5, rate(a{x="or"}[5m]))` +
		` or (b or c) / sum(rate(error_total[1m]))`)
	want := []string{`histogram_quantile(0.5, rate(a_bucket[5m])) `, ` histogram_quantile(0.5, rate(a{x="or"}[5m])) `,
		` (b or c) / sum(rate(error_total[1m]))`}
	if !slices.Equal(got, want) {
		t.Errorf("orBranches = %q, want %q", got, want)
	}
}

// waitRecordings waits until every recording rule whose inputs exist has
// recorded series, and some alert is pending or firing (the thresholds make
// every alert's condition true), so that expressions over recorded series
// and ALERTS are judged on data rather than on timing.
func waitRecordings(t *testing.T, p *testutil.Prometheus) {
	t.Helper()
	exprOf := map[string]string{}
	var order []string
	for _, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					exprOf[r.Record] = r.Expr
					order = append(order, r.Record)
				}
			}
		}
	}
	// expected reports whether a recording has all its inputs: raw
	// selectors with series, recorded ones expected in turn.
	memo := map[string]bool{}
	var expected func(name string) bool
	expected = func(name string) bool {
		if v, ok := memo[name]; ok {
			return v
		}
		memo[name] = false // no cycles among our rules; stop one anyway
		ok := false
		for _, branch := range orBranches(exprOf[name]) {
			all := true
			for _, sel := range parts(branch).selectors {
				if _, recorded := exprOf[sel.name]; recorded {
					all = all && expected(sel.name)
					continue
				}
				n, err := queryCount(p, "count("+sel.text+")")
				all = all && err == nil && n > 0
			}
			ok = ok || all
		}
		memo[name] = ok
		return ok
	}
	testutil.Eventually(t, 60*time.Second, func() error {
		clear(memo)
		var missing []string
		for _, name := range order {
			if !expected(name) {
				continue
			}
			if n, err := queryCount(p, name); err != nil || n == 0 {
				missing = append(missing, name)
			}
		}
		if n, err := queryCount(p, `ALERTS{alertname=~"Netpulse.+"}`); err != nil || n == 0 {
			missing = append(missing, "ALERTS")
		}
		if len(missing) > 0 {
			return fmt.Errorf("no series yet for %v although their inputs exist", missing)
		}
		return nil
	})
}
