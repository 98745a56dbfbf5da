package stacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netpulse/netpulse/internal/testutil"
)

// TestAlertmanagerInhibition runs the real Alertmanager with
// compose/alertmanager.yml on loopback, posts alerts as Prometheus would and
// checks the inhibit rules: an unreachable target mutes its own quality
// alerts (not another target's), an unresolvable one its unreachable alert,
// an agent that is down mutes the rest of that agent's alerts, a target in
// maintenance has its alerts muted.
func TestAlertmanagerInhibition(t *testing.T) {
	bin := testutil.LookPath("prometheus-alertmanager")
	testutil.Need(t, bin != "", "prometheus-alertmanager on PATH: apt-get install -y --no-install-recommends prometheus-alertmanager")
	addr := testutil.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+loopbackAlertmanagerConfig(t, noNotifications),
		"--storage.path="+filepath.Join(t.TempDir(), "data"), "--web.listen-address="+addr,
		"--cluster.listen-address=", "--log.level=warn")
	am := testutil.StartProcess(t, "alertmanager", cmd)
	base := "http://" + addr
	testutil.Eventually(t, 20*time.Second, func() error {
		if am.Exited() {
			return fmt.Errorf("alertmanager exited")
		}
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})

	target := func(alert, instance, target string) map[string]string {
		return map[string]string{"alertname": alert, "job": "netpulse", "instance": instance,
			"probe_name": "internet", "probe_type": "ping", "target_name": target, "severity": "warning"}
	}
	fault := func(alert, instance string) map[string]string {
		return map[string]string{"alertname": alert, "job": "netpulse", "instance": instance, "severity": "critical"}
	}
	alerts := map[string]map[string]string{
		"unreachable":       target("NetpulseTargetUnreachable", "a:9517", "cf"),
		"loss-same-target":  target("NetpulsePacketLoss", "a:9517", "cf"),
		"latency-other":     target("NetpulseHighLatency", "a:9517", "google"),
		"agent-down":        {"alertname": "NetpulseAgentDown", "job": "netpulse", "instance": "b:9517", "severity": "critical"},
		"jitter-down-agent": target("NetpulseHighJitter", "b:9517", "cf"),
		"unresolvable":      target("NetpulseTargetUnresolvable", "a:9517", "gone"),
		"unreachable-gone":  target("NetpulseTargetUnreachable", "a:9517", "gone"),
		// Agent c's gateway fails: the alerts beyond it are muted, not the
		// fault alerts of other agents.
		"gateway-fault":       fault("NetpulseFaultGateway", "c:9517"),
		"isp-behind-gateway":  fault("NetpulseFaultISP", "c:9517"),
		"target-behind-gw":    target("NetpulseTargetUnreachable", "c:9517", "cf"),
		"isp-fault-other":     fault("NetpulseFaultISP", "d:9517"),
		"internet-behind-isp": fault("NetpulseFaultInternet", "d:9517"),
		// Agent e's target cf is in a maintenance window: its alerts are
		// muted, not those of its other target.
		"maintenance":          target("NetpulseMaintenance", "e:9517", "cf"),
		"burn-in-maintenance":  target("NetpulseErrorBudgetBurning", "e:9517", "cf"),
		"latency-other-target": target("NetpulseHighLatency", "e:9517", "google"),
	}
	var post []map[string]any
	for _, labels := range alerts {
		post = append(post, map[string]any{"labels": labels, "startsAt": time.Now().Add(-time.Minute).Format(time.RFC3339)})
	}
	body, _ := json.Marshal(post)
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post alerts: %s", resp.Status)
	}

	wantInhibited := map[string]bool{"loss-same-target": true, "jitter-down-agent": true, "unreachable-gone": true,
		"isp-behind-gateway": true, "target-behind-gw": true, "internet-behind-isp": true, "burn-in-maintenance": true}
	testutil.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get(base + "/api/v2/alerts")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var got []amAlert
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return err
		}
		if len(got) != len(alerts) {
			return fmt.Errorf("alertmanager has %d alerts, want %d", len(got), len(alerts))
		}
		var wrong []string
		for name, labels := range alerts {
			i := slices.IndexFunc(got, func(g amAlert) bool {
				return g.Labels["alertname"] == labels["alertname"] && g.Labels["instance"] == labels["instance"] &&
					g.Labels["target_name"] == labels["target_name"]
			})
			if i < 0 {
				wrong = append(wrong, name+": missing")
				continue
			}
			if inhibited := len(got[i].Status.InhibitedBy) > 0; inhibited != wantInhibited[name] {
				wrong = append(wrong, fmt.Sprintf("%s: inhibited %v, want %v", name, inhibited, wantInhibited[name]))
			}
		}
		if len(wrong) > 0 {
			return fmt.Errorf("compose/alertmanager.yml inhibit rules: %s", strings.Join(wrong, "; "))
		}
		return nil
	})
}

// amAlert is an alert as Alertmanager's API v2 lists it.
type amAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}
