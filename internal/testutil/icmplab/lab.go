package icmplab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netpulse/netpulse/internal/testutil"
)

// Schedule is the path the lab emulates: what it does to each echo request.
// Draws are a pure function of (Seed, destination, sequence number), so a
// schedule is reproducible, independent of arrival order, and two pingers
// numbering their echoes alike see the same path.
type Schedule struct {
	// Base is the delay added between the request's arrival and the reply.
	Base time.Duration
	// Jitter spreads the delay uniformly over [Base-Jitter, Base+Jitter].
	Jitter time.Duration
	// Loss is the probability (0–1) that a request is dropped unanswered.
	Loss float64
	Seed int64
}

// Validate reports what is wrong with the schedule, naming each field.
func (s Schedule) Validate() error {
	var errs []error
	if s.Base < 0 {
		errs = append(errs, fmt.Errorf("icmplab: Schedule.Base: must not be negative, not %v", s.Base))
	}
	if s.Jitter < 0 || s.Jitter > s.Base {
		errs = append(errs, fmt.Errorf("icmplab: Schedule.Jitter: must be between 0 and Base (%v), not %v", s.Base, s.Jitter))
	}
	if !(s.Loss >= 0 && s.Loss <= 1) {
		errs = append(errs, fmt.Errorf("icmplab: Schedule.Loss: must be between 0 and 1, not %v", s.Loss))
	}
	return errors.Join(errs...)
}

// Draw returns the delay the schedule applies to the echo request for dst
// with sequence number seq, and whether it drops it.
func (s Schedule) Draw(dst netip.Addr, seq uint16) (delay time.Duration, drop bool) {
	a := dst.As16()
	x := uint64(s.Seed) ^ binary.BigEndian.Uint64(a[:8])*0x9e3779b97f4a7c15 ^ binary.BigEndian.Uint64(a[8:])
	x = splitmix(x ^ uint64(seq)<<32)
	u1 := float64(splitmix(x)>>11) / (1 << 53)
	u2 := float64(splitmix(x+1)>>11) / (1 << 53)
	delay = s.Base + time.Duration(math.Round((2*u1-1)*float64(s.Jitter)))
	return delay, u2 < s.Loss
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// The lab's addresses. They live only inside the lab's own namespace, so
// fixed values cannot collide with other labs or the host.
var (
	// Addr4 and Addr6 are answered by the responder (with every other
	// address of Prefix4 and Prefix6 except the local ones).
	Addr4 = netip.MustParseAddr("198.18.0.1")
	Addr6 = netip.MustParseAddr("fd00:1ab::1")
	// Local4 and Local6 are the namespace's own addresses on the TUN device:
	// the source of the pinger's echo requests.
	Local4  = netip.MustParseAddr("198.18.0.2")
	Local6  = netip.MustParseAddr("fd00:1ab::2")
	Prefix4 = netip.MustParsePrefix("198.18.0.0/24")
	Prefix6 = netip.MustParsePrefix("fd00:1ab::/64")
)

const tunName = "lab0"

// Lab is a network namespace whose only route leads to a TUN device served
// by the responder. Pingers run inside it: external tools through Command,
// Go code through Do.
type Lab struct {
	Netns        string
	Addr4, Addr6 netip.Addr
	Schedule     Schedule

	resp *responder
}

var labCount atomic.Int64

// NeedLab skips (or fails under NETPULSE_REQUIRE_REAL=1) unless a lab can be
// built: root, the ip command and /dev/net/tun.
func NeedLab(t testing.TB) {
	t.Helper()
	testutil.NeedNetNS(t)
	_, err := os.Stat("/dev/net/tun")
	testutil.Need(t, err == nil, "/dev/net/tun (the tun module) for the ICMP lab")
}

// Start builds a lab for a test and removes it (namespace, TUN device,
// responder) at the test's cleanup, whether the test passed or not.
func Start(t testing.TB, s Schedule) *Lab {
	t.Helper()
	NeedLab(t)
	l, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("icmplab cleanup: %v", err)
		}
	})
	return l
}

// New builds a lab: a namespace np-lab-<pid>-<n> with loopback up, datagram
// ICMP sockets allowed for every group, and the TUN device lab0 holding
// Local4/24 and Local6/64, served by a responder following s. The caller
// must Close it. Needs root.
func New(s Schedule) (l *Lab, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	l = &Lab{Netns: fmt.Sprintf("np-lab-%d-%d", os.Getpid(), labCount.Add(1)), Addr4: Addr4, Addr6: Addr6, Schedule: s}
	if err := ipCmd("netns", "add", l.Netns); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
			l = nil
		}
	}()
	tunFD, tapFD := -1, -1
	err = l.Do(func() error {
		var err error
		if tunFD, err = openTUN(tunName); err != nil {
			return err
		}
		return os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0)
	})
	if err != nil {
		closeFDs(tunFD)
		return nil, err
	}
	for _, step := range [][]string{
		{"-n", l.Netns, "link", "set", "lo", "up"},
		{"-n", l.Netns, "addr", "add", netip.PrefixFrom(Local4, Prefix4.Bits()).String(), "dev", tunName},
		{"-n", l.Netns, "addr", "add", netip.PrefixFrom(Local6, Prefix6.Bits()).String(), "dev", tunName, "nodad"},
		{"-n", l.Netns, "link", "set", tunName, "up"},
	} {
		if err := ipCmd(step...); err != nil {
			closeFDs(tunFD)
			return nil, err
		}
	}
	// The tap is bound once the device is up: bound to a device that is
	// down, a packet socket reports ENETDOWN.
	err = l.Do(func() error {
		var err error
		tapFD, err = openTap(tunName)
		return err
	})
	if err != nil {
		closeFDs(tunFD)
		return nil, err
	}
	if l.resp, err = startResponder(s, tunFD, tapFD); err != nil {
		return nil, err
	}
	return l, nil
}

// Close stops the responder and deletes the namespace (and with it the TUN
// device). It is safe to call more than once.
func (l *Lab) Close() error {
	var errs []error
	if l.resp != nil {
		errs = append(errs, l.resp.close())
		l.resp = nil
	}
	if l.Netns != "" {
		if _, err := os.Stat("/run/netns/" + l.Netns); err == nil {
			errs = append(errs, ipCmd("netns", "del", l.Netns))
		}
	}
	return errors.Join(errs...)
}

// Command returns cmd prepared to run inside the lab's namespace (through
// ip netns exec).
func (l *Lab) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.Netns, name}, args...)...)
}

// Do runs fn on an OS thread that has joined the lab's namespace, and
// returns its error. Sockets fn opens belong to the lab; goroutines fn
// starts run in the process's own namespace (which matters only to sockets
// they open themselves). The thread is discarded afterwards, never reused
// by other goroutines.
func (l *Lab) Do(fn func() error) error { return testutil.InNetNS(l.Netns, fn) }

// Truth returns what the responder did with every echo request it saw, in
// the order they were sent.
func (l *Lab) Truth() []Echo {
	if l.resp == nil {
		return nil
	}
	return l.resp.truth(0)
}

// Mark returns a position in the lab's record; TruthSince(mark) returns the
// echoes seen after it, so one lab can judge several pinger runs in turn.
func (l *Lab) Mark() int {
	if l.resp == nil {
		return 0
	}
	return l.resp.count()
}

// TruthSince returns the echoes seen after mark, in the order they were sent.
func (l *Lab) TruthSince(mark int) []Echo {
	if l.resp == nil {
		return nil
	}
	return l.resp.truth(mark)
}

func sortBySent(e []Echo) {
	sort.SliceStable(e, func(i, j int) bool { return e[i].Sent.Before(e[j].Sent) })
}

// openTUN creates the TUN device name in the calling thread's namespace.
func openTUN(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("icmplab: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("icmplab: TUN name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("icmplab: create TUN device %s: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("icmplab: TUN device %s: %w", name, err)
	}
	return fd, nil
}

// openTap opens a packet socket on the device that sees what the kernel
// transmits to it, each packet with the kernel's timestamp of that moment
// (taken in dev_queue_xmit, microseconds after the pinger's sendmsg).
func openTap(dev string) (int, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return -1, fmt.Errorf("icmplab: %s: %w", dev, err)
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return -1, fmt.Errorf("icmplab: packet socket: %w", err)
	}
	for _, o := range [][2]int{{unix.SO_TIMESTAMPNS, 1}, {unix.SO_RCVBUFFORCE, 4 << 20}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], o[1]); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("icmplab: packet socket option %d: %w", o[0], err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("icmplab: bind packet socket to %s: %w", dev, err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func closeFDs(fds ...int) {
	for _, fd := range fds {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("icmplab: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
