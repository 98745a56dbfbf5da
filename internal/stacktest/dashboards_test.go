package stacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// exportKeys are the keys of Grafana's "export for sharing externally"
// format that the import form reads (datasources to ask for, plugins
// required) and that are not part of the dashboard model itself.
var exportKeys = []string{"__inputs", "__requires", "__elements"}

// TestDashboardsFoundationSchema decodes every dashboard with the Grafana
// Foundation SDK's strict unmarshal, generated from Grafana's own schema: an
// unknown key, a wrongly typed value or a required panel field left out is
// reported with its path.
func TestDashboardsFoundationSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins() // panel options and queries by plugin type
	for rel, d := range dashboardFiles(t) {
		for _, k := range exportKeys {
			delete(d, k)
		}
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		// The classic (v1) dashboard model is what file provisioning and
		// the import form read; dashboardv2 is a different API resource.
		var model dashboard.Dashboard //lint:ignore SA1019 v1 is the model provisioned files use
		err = model.UnmarshalJSONStrict(raw)
		var problems cog.BuildErrors
		switch {
		case errors.As(err, &problems):
			for _, p := range problems {
				t.Errorf("%s: %v", rel, p)
			}
		case err != nil:
			t.Errorf("%s: %v", rel, err)
		}
		if err := model.Validate(); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
}

// TestDashboardsImportable checks what the import form of another Grafana
// needs: __inputs naming a datasource of each type the dashboard's
// datasource variables select, and __requires listing every panel plugin.
func TestDashboardsImportable(t *testing.T) {
	for rel, d := range dashboardFiles(t) {
		inputs := map[string]bool{} // plugin ids asked for
		list, _ := d["__inputs"].([]any)
		for _, in := range list {
			m, _ := in.(map[string]any)
			name, _ := m["name"].(string)
			plugin, _ := m["pluginId"].(string)
			if m["type"] != "datasource" || !strings.HasPrefix(name, "DS_") || plugin == "" {
				t.Errorf("%s: __inputs entry %v: want {name: DS_..., type: datasource, pluginId}", rel, m)
			}
			inputs[plugin] = true
		}
		for name, v := range variables(d) {
			if v["type"] != "datasource" {
				continue
			}
			if plugin, _ := v["query"].(string); !inputs[plugin] {
				t.Errorf("%s: variable %s selects %s datasources, which __inputs does not ask for", rel, name, plugin)
			}
		}
		required := map[string]bool{}
		reqs, _ := d["__requires"].([]any)
		for _, r := range reqs {
			m, _ := r.(map[string]any)
			id, _ := m["id"].(string)
			required[fmt.Sprint(m["type"], "/", id)] = true
		}
		if !required["grafana/grafana"] {
			t.Errorf("%s: __requires does not name the Grafana version", rel)
		}
		for _, p := range panels(d) {
			if typ, _ := p["type"].(string); typ != "row" && !required["panel/"+typ] {
				t.Errorf("%s: panel %v uses the %s plugin, which __requires does not list", rel, p["id"], typ)
			}
		}
	}
}

var (
	quantileOver = regexp.MustCompile(`histogram_quantile\([^,]+,\s*sum by \(([^)]*)\)`)
	bucketSeries = regexp.MustCompile(`\w+_bucket\{`)
)

// TestDashboardsPerAgent checks that no panel merges what different agents or
// probes measured: a quantile keeps instance (and probe_name when it keeps
// target_name), and a latency heatmap is repeated per target.
func TestDashboardsPerAgent(t *testing.T) {
	heatmaps := 0
	for rel, d := range dashboardFiles(t) {
		for _, p := range panels(d) {
			where := fmt.Sprintf("%s: panel %v %q", rel, p["id"], p["title"])
			targets, _ := p["targets"].([]any)
			for _, tg := range targets {
				m, _ := tg.(map[string]any)
				expr, _ := m["expr"].(string)
				for _, q := range quantileOver.FindAllStringSubmatch(expr, -1) {
					var by []string
					for l := range strings.SplitSeq(q[1], ",") {
						by = append(by, strings.TrimSpace(l))
					}
					if !slices.Contains(by, "instance") {
						t.Errorf("%s: quantile by (%s) merges agents: keep instance", where, q[1])
					}
					if slices.Contains(by, "target_name") && !slices.Contains(by, "probe_name") {
						t.Errorf("%s: quantile by (%s) merges probes measuring one target: keep probe_name", where, q[1])
					}
				}
				if p["type"] == "heatmap" && bucketSeries.MatchString(expr) {
					heatmaps++
					if p["repeat"] != "target" || !strings.Contains(expr, `target_name=~"$target"`) {
						t.Errorf("%s: a latency heatmap sums every target: repeat it by the target variable", where)
					}
				}
			}
		}
	}
	if heatmaps == 0 {
		t.Error("no latency heatmap found: the per-target distribution is missing")
	}
}

// TestDashboardsFilter checks that the fleet's variables apply to every
// panel: each selector of an agent's series (netpulse_*, or recorded from
// them) matches site and instance, and one that matches a target also
// matches its probe.
func TestDashboardsFilter(t *testing.T) {
	checked := 0
	for rel, d := range dashboardFiles(t) {
		for _, p := range panels(d) {
			targets, _ := p["targets"].([]any)
			for i, tg := range targets {
				m, _ := tg.(map[string]any)
				expr, _ := m["expr"].(string)
				for _, s := range parts(expr).selectors {
					if !strings.HasPrefix(s.name, "netpulse_") && !strings.Contains(s.name, ":netpulse_") {
						continue // the plan, Prometheus' own series, the collector's
					}
					checked++
					where := fmt.Sprintf("%s: panel %v %q target %d: %s", rel, p["id"], p["title"], i, s.text)
					for _, l := range []string{"site", "instance"} {
						if !slices.Contains(s.matchers, l) {
							t.Errorf("%s: no %s matcher: the %s variable does not filter it", where, l, l)
						}
					}
					if slices.Contains(s.matchers, "target_name") && !slices.Contains(s.matchers, "probe_name") {
						t.Errorf("%s: matches a target but not its probe: the probe variable does not filter it", where)
					}
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d selectors checked: the collection is broken", checked)
	}
}
