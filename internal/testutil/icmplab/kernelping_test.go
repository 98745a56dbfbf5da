package icmplab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestKernelTimestampsReadTheTruth pings the lab with a minimal pinger that
// takes both its timestamps in the kernel (SO_TIMESTAMPING: the TUN
// driver's transmit stamp, the receive stamp): it must read the lab's truth
// to within a few µs. This pins down the package's claim that the truth is
// what a perfect pinger reports, whatever the load (no user-space timing
// enters either side).
func TestKernelTimestampsReadTheTruth(t *testing.T) {
	l := Start(t, Schedule{Base: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.1, Seed: 5})
	for _, dst := range []netip.Addr{l.Addr4, l.Addr6} {
		t.Run(fmt.Sprintf("IPv%d", map[bool]int{true: 4, false: 6}[dst.Is4()]), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			j, err := l.Run(ctx, l.kernelPinger(), dst, 50, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("kernel-stamped pinger vs truth: per echo min %v p50 %v p95 %v max %v; mean %v",
				Quantile(j.Errors, 0), Quantile(j.Errors, .5), Quantile(j.Errors, .95), Quantile(j.Errors, 1), j.MeanErr())
			if !j.LossExact {
				t.Errorf("lost %d, the lab dropped %d", j.Read.Sent-j.Read.Received, j.Truth.Sent-j.Truth.Received)
			}
			if p50 := Quantile(j.Errors, .5); p50.Abs() > 5*time.Microsecond {
				t.Errorf("median per-echo error %v, want within 5 µs", p50)
			}
			if p95 := Quantile(j.Errors, .95); p95 > 50*time.Microsecond {
				t.Errorf("95th percentile per-echo error %v, want within 50 µs", p95)
			}
		})
	}
}

// kernelPinger sends from a datagram ICMP socket with kernel transmit and
// receive timestamps; it matches replies by sequence number.
func (l *Lab) kernelPinger() Pinger {
	return func(ctx context.Context, dst netip.Addr, count int, interval time.Duration) ([]time.Duration, error) {
		var rtts []time.Duration
		err := l.Do(func() error {
			fd, sa, typ, err := kernelSocket(dst)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			sent := make([]time.Time, count)
			rtts = make([]time.Duration, count)
			for i := range rtts {
				rtts[i] = Lost
			}
			start := time.Now()
			for i := range count {
				pkt := []byte{typ, 0, 0, 0, 0, 0, byte(i >> 8), byte(i), 'l', 'a', 'b', 0}
				if err := unix.Sendto(fd, pkt, 0, sa); err != nil {
					return fmt.Errorf("send: %w", err)
				}
				if sent[i], err = txStamp(fd); err != nil {
					return err
				}
				next := start.Add(time.Duration(i+1) * interval)
				if i == count-1 {
					next = time.Now().Add(time.Second)
				}
				if err := receive(ctx, fd, next, sent, rtts); err != nil {
					return err
				}
			}
			return nil
		})
		return rtts, err
	}
}

func kernelSocket(dst netip.Addr) (fd int, sa unix.Sockaddr, echoType byte, err error) {
	if dst.Is4() {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
		sa, echoType = &unix.SockaddrInet4{Addr: dst.As4()}, 8
	} else {
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6)
		sa, echoType = &unix.SockaddrInet6{Addr: dst.As16()}, 128
	}
	if err != nil {
		return -1, nil, 0, fmt.Errorf("ICMP datagram socket: %w", err)
	}
	flags := unix.SOF_TIMESTAMPING_TX_SOFTWARE | unix.SOF_TIMESTAMPING_RX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE | unix.SOF_TIMESTAMPING_OPT_TSONLY
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, flags); err != nil {
		unix.Close(fd)
		return -1, nil, 0, fmt.Errorf("SO_TIMESTAMPING: %w", err)
	}
	return fd, sa, echoType, nil
}

// txStamp reads the transmit timestamp of the packet just sent from the
// error queue (the TUN driver stamps it within sendmsg).
func txStamp(fd int) (time.Time, error) {
	oob := make([]byte, 512)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		_, oobn, _, _, err := unix.Recvmsg(fd, nil, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			fds := []unix.PollFd{{Fd: int32(fd), Events: 0}} // POLLERR is always reported
			_, _ = unix.Poll(fds, 10)
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("error queue: %w", err)
		}
		if ts, ok := stampOf(oob[:oobn]); ok {
			return ts, nil
		}
	}
	return time.Time{}, errors.New("no transmit timestamp within 1 s")
}

// receive reads replies until the deadline, each with its receive stamp.
func receive(ctx context.Context, fd int, until time.Time, sent []time.Time, rtts []time.Duration) error {
	buf, oob := make([]byte, 1500), make([]byte, 512)
	for {
		left := time.Until(until)
		if left <= 0 || ctx.Err() != nil {
			return ctx.Err()
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, max(1, int(left.Milliseconds()))); err != nil && err != unix.EINTR {
			return fmt.Errorf("poll: %w", err)
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			continue
		}
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		ts, ok := stampOf(oob[:oobn])
		if n < 8 || !ok {
			return fmt.Errorf("a reply of %d bytes without a receive timestamp", n)
		}
		seq := int(binary.BigEndian.Uint16(buf[6:8]))
		if seq < len(sent) && !sent[seq].IsZero() && rtts[seq] == Lost {
			rtts[seq] = ts.Sub(sent[seq])
		}
	}
}

// stampOf returns the software timestamp of an SCM_TIMESTAMPING message.
func stampOf(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPING && len(m.Data) >= 3*int(unsafe.Sizeof(unix.Timespec{})) {
			ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Sec, ts.Nsec), true
		}
	}
	return time.Time{}, false
}
