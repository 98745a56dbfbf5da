package stacktest

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// promExpr is one PromQL expression shipped in the stack, ready to be sent to
// Prometheus (Grafana variables replaced).
type promExpr struct {
	where string // file and rule, panel or variable
	expr  string
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record,omitempty"`
			Alert       string            `yaml:"alert,omitempty"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for,omitempty"`
			Labels      map[string]string `yaml:"labels,omitempty"`
			Annotations map[string]string `yaml:"annotations,omitempty"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleFiles returns the shipped rule files, by path relative to the repo.
func ruleFiles(t testing.TB) map[string]ruleFile {
	t.Helper()
	paths, err := filepath.Glob(repoPath(t, "prometheus/rules/*.yml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no rule files in prometheus/rules (%v)", err)
	}
	out := map[string]ruleFile{}
	for _, p := range paths {
		rel := "prometheus/rules/" + filepath.Base(p)
		var rf ruleFile
		loadYAML(t, rel, &rf)
		out[rel] = rf
	}
	return out
}

// dashboardFiles returns the parsed dashboards, by path relative to the repo.
func dashboardFiles(t testing.TB) map[string]map[string]any {
	t.Helper()
	paths, err := filepath.Glob(repoPath(t, "grafana/dashboards/*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards in grafana/dashboards (%v)", err)
	}
	out := map[string]map[string]any{}
	for _, p := range paths {
		rel := "grafana/dashboards/" + filepath.Base(p)
		var d map[string]any
		if err := json.Unmarshal(readRepo(t, rel), &d); err != nil {
			t.Fatalf("%s: invalid JSON: %v", rel, err)
		}
		out[rel] = d
	}
	return out
}

// panels returns every panel of a dashboard, those nested in rows included.
func panels(d map[string]any) []map[string]any {
	var out []map[string]any
	var walk func(list any)
	walk = func(list any) {
		items, _ := list.([]any)
		for _, it := range items {
			p, ok := it.(map[string]any)
			if !ok {
				continue
			}
			out = append(out, p)
			walk(p["panels"])
		}
	}
	walk(d["panels"])
	return out
}

// variables returns the names of a dashboard's template variables.
func variables(d map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	tmpl, _ := d["templating"].(map[string]any)
	list, _ := tmpl["list"].([]any)
	for _, v := range list {
		if m, ok := v.(map[string]any); ok {
			name, _ := m["name"].(string)
			out[name] = m
		}
	}
	return out
}

// grafanaBuiltins are the values the tests give Grafana's own variables.
var grafanaBuiltins = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "1h",
	// Tempo's trace-to-metrics links: the span's tags as matchers.
	"__tags": `target_name=~".+"`,
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// substitute replaces Grafana variables: built-ins by fixed values, the
// dashboard's own (all multi-value, matched with =~) by ".*".
func substitute(expr string, vars map[string]map[string]any) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sm := grafanaVar.FindStringSubmatch(m)
		name := sm[1] + sm[2]
		if v, ok := grafanaBuiltins[name]; ok {
			return v
		}
		if _, ok := vars[name]; ok {
			return ".*"
		}
		unknown = append(unknown, name)
		return m
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("undefined variables %v", unknown)
	}
	return out, nil
}

var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.*),\s*(\w+)\s*\)\s*$`)

// shippedExprs collects every PromQL expression of the stack: rules,
// dashboard panels and variables, and the datasources' trace-to-metrics
// queries. Problems (a variable that is not defined) are returned as errors.
func shippedExprs(t testing.TB) ([]promExpr, []error) {
	t.Helper()
	var out []promExpr
	var errs []error
	for rel, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				out = append(out, promExpr{where: fmt.Sprintf("%s: %s", rel, r.Record+r.Alert), expr: r.Expr})
			}
		}
	}
	for rel, d := range dashboardFiles(t) {
		vars := variables(d)
		for _, p := range panels(d) {
			targets, _ := p["targets"].([]any)
			for i, tg := range targets {
				m, _ := tg.(map[string]any)
				raw, _ := m["expr"].(string)
				if raw == "" {
					continue
				}
				where := fmt.Sprintf("%s: panel %v %q target %d", rel, p["id"], p["title"], i)
				e, err := substitute(raw, vars)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", where, err))
					continue
				}
				out = append(out, promExpr{where: where, expr: e})
			}
		}
		for name, v := range vars {
			if v["type"] != "query" {
				continue // a datasource variable: its query is a plugin type
			}
			q, _ := v["definition"].(string)
			if qm, ok := v["query"].(map[string]any); ok {
				q, _ = qm["query"].(string)
			} else if qs, ok := v["query"].(string); ok {
				q = qs
			}
			if q == "" {
				continue
			}
			where := fmt.Sprintf("%s: variable %s", rel, name)
			lv := labelValuesQuery.FindStringSubmatch(q)
			if lv == nil {
				errs = append(errs, fmt.Errorf("%s: only label_values(selector, label) queries are checked, got %q", where, q))
				continue
			}
			e, err := substitute(fmt.Sprintf("count by (%s) (%s)", lv[2], lv[1]), vars)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			out = append(out, promExpr{where: where, expr: e})
		}
	}
	for i, q := range traceToMetricsQueries(t) {
		e, err := substitute(q, nil)
		where := fmt.Sprintf("grafana/provisioning/datasources/datasources.yml: tracesToMetrics query %d", i)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		out = append(out, promExpr{where: where, expr: e})
	}
	slices.SortFunc(out, func(a, b promExpr) int { return strings.Compare(a.where, b.where) })
	return out, errs
}

// selector is one vector selector of an expression.
type selector struct {
	name     string
	text     string   // as written: name{matchers}
	matchers []string // label names
}

// exprParts is what a PromQL expression refers to.
type exprParts struct {
	selectors []selector
	grouping  []string // label names in by/without/on/ignoring/group_* lists
}

var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	reSelector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	reMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	reGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	reRange    = regexp.MustCompile(`\[[^\]]*\]`)
	reIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "start": true, "end": true}
)

// parts finds the selectors and grouping labels of a PromQL expression with
// a small lexer: strings, matcher blocks, grouping lists and ranges are
// removed, and what remains of identifiers not followed by "(" are metric
// names. It is enough for the expressions we ship (no selectors by __name__
// alone); Prometheus itself parses every expression in the live test.
func parts(expr string) exprParts {
	var p exprParts
	seen := map[string]bool{}
	for _, m := range reSelector.FindAllStringSubmatch(expr, -1) {
		s := selector{name: m[1], text: m[0]}
		for _, mm := range reMatcher.FindAllStringSubmatch(reString.ReplaceAllString(m[2], `""`), -1) {
			s.matchers = append(s.matchers, mm[1])
		}
		p.selectors = append(p.selectors, s)
		seen[s.name] = true
	}
	rest := reString.ReplaceAllString(expr, `""`)
	rest = reSelector.ReplaceAllString(rest, "$1")
	for _, m := range reGrouping.FindAllStringSubmatch(rest, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				p.grouping = append(p.grouping, l)
			}
		}
	}
	rest = reGrouping.ReplaceAllString(rest, " ")
	rest = reRange.ReplaceAllString(rest, " ")
	for _, loc := range reIdent.FindAllStringIndex(rest, -1) {
		name := rest[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.", rune(rest[loc[0]-1])) {
			continue // the exponent or unit of a number: 1e-3, 5m
		}
		if strings.HasPrefix(strings.TrimLeft(rest[loc[1]:], " \t\n"), "(") {
			continue // a function or aggregation
		}
		if keywords[strings.ToLower(name)] || seen[name] {
			continue
		}
		seen[name] = true
		p.selectors = append(p.selectors, selector{name: name, text: name})
	}
	return p
}

// knownNames is every metric name an expression may refer to, with the label
// names its series can have: the golden surface (histograms with their
// _bucket/_sum/_count series), the series recorded by the rules (labels of
// their sources are not tracked: nil), and what Prometheus makes itself.
func knownNames(t testing.TB) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	scrape := map[string]bool{"job": true, "instance": true}
	for name, m := range golden(t) {
		labels := maps.Clone(m.labels)
		maps.Copy(labels, scrape)
		if m.typ == "histogram" {
			// The bare name is the native histogram of an agent with
			// exponential histograms (telemetry.profile: lean).
			out[name] = labels
			out[name+"_sum"], out[name+"_count"] = labels, labels
			bucket := maps.Clone(labels)
			bucket["le"] = true
			out[name+"_bucket"] = bucket
			continue
		}
		out[name] = labels
	}
	for _, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					out[r.Record] = nil
				}
			}
		}
	}
	out["up"] = scrape
	out["ALERTS"] = nil
	for name, labels := range collectorMetrics {
		out[name] = labels
	}
	// The agent's Go runtime and process collectors (client_golang).
	for _, n := range []string{"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines"} {
		out[n] = scrape
	}
	return out
}

// allLabels is the union of every label name of the golden surface, plus
// those Prometheus and the alerting rules add.
func allLabels(t testing.TB) map[string]bool {
	t.Helper()
	out := map[string]bool{"job": true, "instance": true, "le": true, "alertname": true, "alertstate": true,
		"severity": true, "__name__": true}
	for _, m := range golden(t) {
		maps.Copy(out, m.labels)
	}
	for _, labels := range collectorMetrics {
		maps.Copy(out, labels)
	}
	return out
}

// collectorMetrics are the collector's own metrics (job "otelcol") the
// dashboards query, with their label names. TestStack and TestPushPipeline
// check that the running collector exposes them (the send_failed ones
// appear after a first failed export).
var collectorMetrics = func() map[string]map[string]bool {
	set := func(names ...string) map[string]bool {
		m := map[string]bool{"job": true, "instance": true}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	out := map[string]map[string]bool{}
	for _, signal := range []string{"spans", "metric_points"} {
		for _, what := range []string{"accepted", "refused", "failed"} {
			out["otelcol_receiver_"+what+"_"+signal+"_total"] = set("receiver", "transport")
		}
		for _, what := range []string{"sent", "send_failed"} {
			out["otelcol_exporter_"+what+"_"+signal+"_total"] = set("exporter", "server_address", "server_port")
		}
	}
	out["otelcol_exporter_queue_size"] = set("exporter", "data_type")
	out["otelcol_exporter_queue_capacity"] = set("exporter", "data_type")
	return out
}()

// TestExpressionsReferToTheMetricSurface checks, without Prometheus, that every
// shipped expression names only metrics of the golden surface (or recorded
// by a rule) and only label names those metrics have: a rename in the agent
// or a typo in a dashboard fails here.
func TestExpressionsReferToTheMetricSurface(t *testing.T) {
	exprs, errs := shippedExprs(t)
	for _, err := range errs {
		t.Error(err)
	}
	if len(exprs) < 30 {
		t.Fatalf("found only %d expressions: the collection is broken", len(exprs))
	}
	known := knownNames(t)
	labels := allLabels(t)
	for _, e := range exprs {
		p := parts(e.expr)
		if len(p.selectors) == 0 && !strings.Contains(e.expr, "vector(") {
			t.Errorf("%s: no metric found in %q", e.where, e.expr)
		}
		for _, s := range p.selectors {
			metricLabels, ok := known[s.name]
			if !ok {
				t.Errorf("%s: metric %q is neither in internal/agent/testdata/*.golden nor recorded by a rule", e.where, s.name)
				continue
			}
			for _, l := range s.matchers {
				if metricLabels != nil && !metricLabels[l] {
					t.Errorf("%s: %s has no label %q (labels: %v)", e.where, s.name, l, slices.Sorted(maps.Keys(metricLabels)))
				} else if !labels[l] {
					t.Errorf("%s: label %q is not on any netpulse series", e.where, l)
				}
			}
		}
		for _, l := range p.grouping {
			if !labels[l] {
				t.Errorf("%s: grouping label %q is not on any netpulse series", e.where, l)
			}
		}
	}
}

// TestPartsLexer pins the small PromQL lexer on the shapes we ship.
func TestPartsLexer(t *testing.T) {
	p := parts(`histogram_quantile(0.95, sum by (le, target_name) (rate(netpulse_ping_rtt_seconds_bucket{probe_type="ping", target_name=~".*"}[1m]))) > on() group_left() netpulse:threshold:x or 1e-3 * up offset 5m unless absent(x_total{a!="}"})`)
	var names []string
	for _, s := range p.selectors {
		names = append(names, s.name)
	}
	want := []string{"netpulse_ping_rtt_seconds_bucket", "x_total", "netpulse:threshold:x", "up"}
	if !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	if !slices.Equal(p.selectors[0].matchers, []string{"probe_type", "target_name"}) {
		t.Errorf("matchers = %v", p.selectors[0].matchers)
	}
	if !slices.Equal(p.grouping, []string{"le", "target_name"}) {
		t.Errorf("grouping = %v", p.grouping)
	}
}
