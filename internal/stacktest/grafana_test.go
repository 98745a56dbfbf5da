package stacktest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// datasourcesFile is grafana/provisioning/datasources/datasources.yml.
type datasourcesFile struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name     string         `yaml:"name"`
		UID      string         `yaml:"uid"`
		Type     string         `yaml:"type"`
		URL      string         `yaml:"url"`
		JSONData map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

const datasourcesRel = "grafana/provisioning/datasources/datasources.yml"

func datasources(t testing.TB) datasourcesFile {
	t.Helper()
	var f datasourcesFile
	loadYAML(t, datasourcesRel, &f)
	return f
}

// traceToMetricsQueries returns the Tempo datasource's trace-to-metrics
// queries with `$$` (provisioning's escaped `$`) unescaped.
func traceToMetricsQueries(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, ds := range datasources(t).Datasources {
		ttm, _ := ds.JSONData["tracesToMetrics"].(map[string]any)
		qs, _ := ttm["queries"].([]any)
		for _, q := range qs {
			m, _ := q.(map[string]any)
			if s, _ := m["query"].(string); s != "" {
				out = append(out, strings.ReplaceAll(s, "$$", "$"))
			}
		}
	}
	return out
}

// TestDatasources checks the provisioned datasources: unique uids, the
// exemplar → trace and trace → metrics links point at datasources that exist.
func TestDatasources(t *testing.T) {
	f := datasources(t)
	if f.APIVersion != 1 {
		t.Errorf("%s: apiVersion %d, want 1", datasourcesRel, f.APIVersion)
	}
	uids := map[string]string{}
	for _, ds := range f.Datasources {
		if ds.UID == "" {
			t.Errorf("%s: datasource %q has no uid (dashboards refer to uids)", datasourcesRel, ds.Name)
		}
		if _, dup := uids[ds.UID]; dup {
			t.Errorf("%s: uid %q used twice", datasourcesRel, ds.UID)
		}
		uids[ds.UID] = ds.Type
	}
	for _, want := range []string{"prometheus", "tempo"} {
		if uids[want] != want {
			t.Errorf("%s: want a %s datasource with uid %q, have %v", datasourcesRel, want, want, uids)
		}
	}
	for _, ds := range f.Datasources {
		if dests, ok := ds.JSONData["exemplarTraceIdDestinations"].([]any); ok {
			for _, d := range dests {
				m, _ := d.(map[string]any)
				if uid, _ := m["datasourceUid"].(string); uids[uid] != "tempo" {
					t.Errorf("%s: %s: exemplar destination %q is not a Tempo datasource", datasourcesRel, ds.Name, uid)
				}
				// The agent's exemplars carry the trace id under this
				// label (checked live in TestStack).
				if name, _ := m["name"].(string); name != "trace_id" {
					t.Errorf("%s: %s: exemplar label %q, the agent writes trace_id", datasourcesRel, ds.Name, name)
				}
			}
		} else if ds.Type == "prometheus" {
			t.Errorf("%s: %s: no exemplarTraceIdDestinations: exemplars would not link to traces", datasourcesRel, ds.Name)
		}
		if ttm, ok := ds.JSONData["tracesToMetrics"].(map[string]any); ok {
			if uid, _ := ttm["datasourceUid"].(string); uids[uid] != "prometheus" {
				t.Errorf("%s: %s: tracesToMetrics datasource %q is not a Prometheus datasource", datasourcesRel, ds.Name, uid)
			}
		} else if ds.Type == "tempo" {
			t.Errorf("%s: %s: no tracesToMetrics: traces would not link to metrics", datasourcesRel, ds.Name)
		}
	}
	if len(traceToMetricsQueries(t)) == 0 {
		t.Errorf("%s: no trace-to-metrics queries", datasourcesRel)
	}
}

// panelsWithoutQuery are the panel types that show no data of their own.
var panelsWithoutQuery = map[string]bool{"row": true, "text": true}

// dashboardVars are the variables every dashboard has: the datasource
// (portable across Grafanas) and the filters of a fleet of agents.
var dashboardVars = []string{"datasource", "site", "instance", "probe", "target"}

// TestDashboards checks every dashboard: valid JSON, unique uid, unique panel
// ids, a query on every data panel, datasources referred to through
// datasource variables that default to provisioned uids, units set,
// thresholds on stat panels, and the fleet's variables.
func TestDashboards(t *testing.T) {
	provisioned := map[string]string{} // uid → type
	for _, ds := range datasources(t).Datasources {
		provisioned[ds.UID] = ds.Type
	}
	dashUIDs := map[string]string{}
	for rel, d := range dashboardFiles(t) {
		uid, _ := d["uid"].(string)
		if uid == "" {
			t.Errorf("%s: no uid (links and the home dashboard need a stable one)", rel)
		} else if other, dup := dashUIDs[uid]; dup {
			t.Errorf("%s: uid %q also used by %s", rel, uid, other)
		}
		dashUIDs[uid] = rel
		if title, _ := d["title"].(string); title == "" {
			t.Errorf("%s: no title", rel)
		}
		vars := variables(d)
		for _, want := range dashboardVars {
			if _, ok := vars[want]; !ok {
				t.Errorf("%s: no %q variable (have %v)", rel, want, slices.Sorted(maps.Keys(vars)))
			}
		}
		dsVars := datasourceVariables(t, rel, vars, provisioned)
		for name, v := range vars {
			checkDatasource(t, fmt.Sprintf("%s: variable %s", rel, name), v["datasource"], dsVars)
		}
		ids := map[float64]bool{}
		ps := panels(d)
		if len(ps) == 0 {
			t.Errorf("%s: no panels", rel)
		}
		for _, p := range ps {
			typ, _ := p["type"].(string)
			where := fmt.Sprintf("%s: panel %v %q", rel, p["id"], p["title"])
			id, ok := p["id"].(float64)
			switch {
			case !ok:
				t.Errorf("%s: no numeric id", where)
			case ids[id]:
				t.Errorf("%s: id %v used twice", where, id)
			}
			ids[id] = true
			if _, ok := p["gridPos"].(map[string]any); !ok {
				t.Errorf("%s: no gridPos", where)
			}
			if panelsWithoutQuery[typ] {
				continue
			}
			checkDatasource(t, where, p["datasource"], dsVars)
			targets, _ := p["targets"].([]any)
			queries := 0
			for _, tg := range targets {
				m, _ := tg.(map[string]any)
				for _, key := range []string{"expr", "query"} { // PromQL, TraceQL
					if e, _ := m[key].(string); strings.TrimSpace(e) != "" {
						queries++
					}
				}
				checkDatasource(t, where, m["datasource"], dsVars)
			}
			if queries == 0 {
				t.Errorf("%s: a %s panel without a query", where, typ)
			}
			fc, _ := p["fieldConfig"].(map[string]any)
			defaults, _ := fc["defaults"].(map[string]any)
			if unit, _ := defaults["unit"].(string); unit == "" {
				t.Errorf("%s: no unit (fieldConfig.defaults.unit)", where)
			}
			if typ == "stat" || typ == "gauge" {
				th, _ := defaults["thresholds"].(map[string]any)
				if steps, _ := th["steps"].([]any); len(steps) < 2 && !hasColourMappings(defaults) {
					t.Errorf("%s: a %s panel without coloured thresholds", where, typ)
				}
			}
		}
	}
	if len(dashUIDs) < 3 {
		t.Errorf("want the Network quality, Speed tests and Agent health dashboards, have %v", dashUIDs)
	}
}

func hasColourMappings(defaults map[string]any) bool {
	ms, _ := defaults["mappings"].([]any)
	return len(ms) > 0
}

// datasourceVariables returns the dashboard's datasource variables (name →
// plugin type), checking that each defaults to the uid provisioning gives a
// datasource of that type, so the shipped stack works without a choice.
func datasourceVariables(t *testing.T, rel string, vars map[string]map[string]any, provisioned map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, v := range vars {
		if v["type"] != "datasource" {
			continue
		}
		plugin, _ := v["query"].(string)
		out[name] = plugin
		cur, _ := v["current"].(map[string]any)
		if uid, _ := cur["value"].(string); provisioned[uid] != plugin || plugin == "" {
			t.Errorf("%s: datasource variable %s (%s) defaults to %q, not to a provisioned %s datasource (%s has %v)",
				rel, name, plugin, uid, plugin, datasourcesRel, provisioned)
		}
	}
	return out
}

// dsVariableRef matches a datasource uid that is a dashboard variable.
var dsVariableRef = regexp.MustCompile(`^\$\{(\w+)\}$|^\$(\w+)$`)

// checkDatasource fails when a panel, target or variable refers to a
// datasource other than through a datasource variable of the same type:
// a hard-coded uid breaks the dashboard in any Grafana but ours.
func checkDatasource(t *testing.T, where string, ds any, dsVars map[string]string) {
	t.Helper()
	switch v := ds.(type) {
	case nil:
		// Inherits the panel's or the default datasource.
	case map[string]any:
		uid, _ := v["uid"].(string)
		typ, _ := v["type"].(string)
		m := dsVariableRef.FindStringSubmatch(uid)
		if m == nil {
			t.Errorf("%s: datasource uid %q is hard-coded: use a datasource variable such as ${datasource}", where, uid)
			return
		}
		name := m[1] + m[2]
		if plugin, ok := dsVars[name]; !ok {
			t.Errorf("%s: datasource %q: no datasource variable %s", where, uid, name)
		} else if plugin != typ {
			t.Errorf("%s: datasource %q has type %q, the variable selects %s datasources", where, uid, typ, plugin)
		}
	default:
		t.Errorf("%s: datasource %v: refer to datasources by {type, uid}", where, v)
	}
}

// TestDashboardProvisioning checks that the dashboard provider loads the
// directory compose.yaml mounts grafana/dashboards on.
func TestDashboardProvisioning(t *testing.T) {
	var f struct {
		Providers []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	const rel = "grafana/provisioning/dashboards/dashboards.yml"
	loadYAML(t, rel, &f)
	if len(f.Providers) == 0 {
		t.Fatalf("%s: no providers", rel)
	}
	mounts := composeFile(t).Services["grafana"].binds(t)
	for _, p := range f.Providers {
		if p.Type != "file" {
			continue
		}
		src, ok := mounts[p.Options.Path]
		if !ok {
			t.Errorf("%s: provider %s loads %s, which compose.yaml does not mount into grafana (mounts: %v)",
				rel, p.Name, p.Options.Path, mounts)
		} else if src != "./grafana/dashboards" {
			t.Errorf("%s: provider %s loads %s, mounted from %s, not ./grafana/dashboards", rel, p.Name, p.Options.Path, src)
		}
	}
}
