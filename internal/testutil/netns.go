package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// NetNS is a network namespace created by a test, joined to the host by a
// veth pair on a /30 inside 198.18.0.0/15 (RFC 2544 benchmarking space, never
// routed on the internet). Nothing else is routed into or out of it.
type NetNS struct {
	Name string
	// HostIf and NSIf are the veth ends in the host and in the namespace.
	HostIf, NSIf string
	// HostAddr and NSAddr are the two addresses of the /30, without prefix.
	HostAddr, NSAddr string
}

// NeedNetNS skips (or fails under NETPULSE_REQUIRE_REAL=1) unless the tests
// run as root with the ip command.
func NeedNetNS(t testing.TB) {
	t.Helper()
	Need(t, IsRoot() && LookPath("ip") != "", "root and the ip command (iproute2) to create network namespaces")
}

// NewNetNS creates a namespace with a unique name and a veth pair, host side
// 198.18.x.y+1/30, namespace side 198.18.x.y+2/30, both up (loopback in the
// namespace too). Everything is deleted at cleanup.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	NeedNetNS(t)
	var lastErr error
	for range 5 {
		ns, err := tryNetNS(t)
		if err == nil {
			return ns
		}
		lastErr = err
	}
	t.Fatalf("create network namespace: %v", lastErr)
	return nil
}

func tryNetNS(t testing.TB) (*NetNS, error) {
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	tag := hex.EncodeToString(id)
	// One of the 32768 /30 blocks of 198.18.0.0/15.
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<15))
	block := int(n.Int64()) * 4
	base := [4]int{198, 18 + block>>16, (block >> 8) & 0xff, block & 0xff}
	addr := func(host int) string { return fmt.Sprintf("%d.%d.%d.%d", base[0], base[1], base[2], base[3]+host) }
	ns := &NetNS{Name: "np-test-" + tag, HostIf: "np" + tag + "h", NSIf: "np" + tag + "n",
		HostAddr: addr(1), NSAddr: addr(2)}
	if out, _ := exec.Command("ip", "-o", "addr", "show").CombinedOutput(); strings.Contains(string(out), " "+ns.HostAddr+"/") {
		return nil, fmt.Errorf("%s already in use", ns.HostAddr)
	}
	if err := ip("netns", "add", ns.Name); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		// Deleting the namespace destroys its veth end and so the pair.
		_ = ip("link", "del", ns.HostIf)
		if err := ip("netns", "del", ns.Name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	steps := [][]string{
		{"link", "add", ns.HostIf, "type", "veth", "peer", "name", ns.NSIf, "netns", ns.Name},
		{"addr", "add", ns.HostAddr + "/30", "dev", ns.HostIf},
		{"link", "set", ns.HostIf, "up"},
		{"-n", ns.Name, "addr", "add", ns.NSAddr + "/30", "dev", ns.NSIf},
		{"-n", ns.Name, "link", "set", ns.NSIf, "up"},
		{"-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// Exec runs a command inside the namespace and returns its combined output.
func (ns *NetNS) Exec(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s %s: %w: %s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// InNetNS runs fn on an OS thread that has joined the named network
// namespace (ip netns add's name), and returns its error. Sockets fn opens
// belong to that namespace; goroutines fn starts run in the process's own.
// The thread is discarded afterwards, never reused by other goroutines.
func InNetNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the runtime ends the thread with this
		// goroutine, so no other goroutine ever runs in the namespace.
		runtime.LockOSThread()
		ns, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", name, err)
			return
		}
		err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET)
		_ = ns.Close()
		if err != nil {
			errc <- fmt.Errorf("join namespace %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Do runs fn inside the namespace (InNetNS); a failure to join it fails t.
func (ns *NetNS) Do(t testing.TB, fn func()) {
	t.Helper()
	if err := InNetNS(ns.Name, func() error { fn(); return nil }); err != nil {
		t.Fatal(err)
	}
}
