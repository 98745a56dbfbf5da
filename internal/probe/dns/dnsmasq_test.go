package dns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	miekg "github.com/miekg/dns"

	"github.com/netpulse/netpulse/internal/testutil"
)

// startDnsmasq runs dnsmasq (Debian's dnsmasq-base) on a loopback port,
// authoritative for a few names under test and refusing every other name
// (it has no upstream). Its UDP answers are capped at 512 bytes, so
// big.test's TXT records come back truncated over UDP and whole over TCP.
func startDnsmasq(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/dnsmasq")
	}
	testutil.Need(t, err == nil && os.Geteuid() == 0, "dnsmasq as root (apt-get install dnsmasq-base)")
	port := testutil.FreePort(t)
	long := strings.Repeat("x", 200)
	cmd := exec.Command(bin, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		fmt.Sprintf("--port=%d", port), "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=",
		"--log-facility=-", "--log-queries", "--user=root", "--group=root", "--edns-packet-max=512",
		"--local=/test/", "--address=/a.test/192.0.2.7", "--mx-host=mx.test,mail.test,10",
		fmt.Sprintf("--txt-record=big.test,%q,%q,%q", long, long, long),
		fmt.Sprintf("--txt-record=big.test,%q,%q,%q", long, long, long))
	proc := testutil.StartProcess(t, "dnsmasq", cmd)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testutil.Eventually(t, 10*time.Second, func() error {
		if proc.Exited() {
			return testutil.Permanent(fmt.Errorf("dnsmasq exited: %s", proc.Output()))
		}
		q := new(miekg.Msg)
		q.SetQuestion("a.test.", miekg.TypeA)
		_, _, err := (&miekg.Client{Timeout: 200 * time.Millisecond}).Exchange(q, addr)
		return err
	})
	return addr
}

// The probe against a real DNS server: answers, NXDOMAIN and REFUSED as
// rcode failures, a truncated UDP answer retried over TCP.
func TestDnsmasq(t *testing.T) {
	addr := startDnsmasq(t)
	for _, c := range []struct {
		name, query, qtype, transport, want string
		edit                                func(*Config)
		values                              map[string]float64
	}{
		{"A", "a.test", "A", TransportUDP, "", func(c *Config) {
			c.Answers.MustMatch, c.Authoritative = []string{`^192\.0\.2\.7$`}, true
		}, map[string]float64{"answer_records": 1, "response_code": 0}},
		{"MX over tcp", "mx.test", "MX", TransportTCP, "", func(c *Config) {
			c.Answers.MustMatch = []string{`^10 mail\.test\.$`}
		}, map[string]float64{"answer_records": 1}},
		{"truncated", "big.test", "TXT", TransportUDP, "", func(c *Config) { c.Answers.Min = 2 },
			map[string]float64{"answer_records": 2, "truncated_responses": 1}},
		{"nxdomain", "nx.test", "A", TransportUDP, ErrRcode, nil, map[string]float64{"response_code": 3}},
		{"refused", "outside.example", "A", TransportUDP, ErrRcode, nil, map[string]float64{"response_code": 5}},
		{"wrong value", "a.test", "A", TransportUDP, ErrAnswer, func(c *Config) {
			c.Answers.MustNotMatch = []string{`^192\.0\.2\.`}
		}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(c.query, c.qtype)
			cfg.Transport = c.transport
			if c.edit != nil {
				c.edit(&cfg)
			}
			p, tel := newTestProber(t, cfg)
			v, err, typ := run(t, p, tel, addr, 5*time.Second)
			if typ != c.want {
				t.Fatalf("error type %q (%v), want %q", typ, err, c.want)
			}
			for k, want := range c.values {
				if v[k] != want {
					t.Errorf("%s = %v, want %v (values %v)", k, v[k], want, v)
				}
			}
			if _, ok := v["lookup_seconds"]; !ok {
				t.Errorf("no lookup time: %v", v)
			}
		})
	}
}
