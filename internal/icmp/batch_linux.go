package icmp

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchLen is how many messages one recvmmsg(2) may return. At 1,000
// targets a wake usually finds one or two; a starved process finds more.
const batchLen = 8

// mmsghdr is struct mmsghdr: a msghdr and the length the kernel received.
// Go pads it to the platform's layout (64 bytes on 64-bit, 32 on 32-bit).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batch is a socket's receive buffers for recvmmsg(2). Written by hand
// because x/sys has no recvmmsg, and its Recvmsg allocates a sockaddr and
// asks the socket's protocol with getsockopt on every read that returns an
// address: at 1,000 echoes a second that was a third of the receive loop.
type batch struct {
	hdrs  [batchLen]mmsghdr
	iovs  [batchLen]unix.Iovec
	names [batchLen]unix.RawSockaddrInet6 // room for either family
	bufs  [batchLen][]byte
	oobs  [batchLen][1024]byte
	size  int // of each of bufs
}

// newBatch makes buffers for messages of up to size bytes.
func newBatch(size int) *batch {
	b := &batch{size: size}
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, size)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		h := &b.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Control = &b.oobs[i][0]
	}
	return b
}

// read fills the batch from the socket without waiting and returns how many
// messages it holds, or an error (EAGAIN when the queue was empty).
func (b *batch) read(fd, flags int) (int, error) {
	for i := range b.hdrs {
		h := &b.hdrs[i].hdr
		h.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		h.SetControllen(len(b.oobs[i]))
		h.Flags = 0
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])),
			batchLen, uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}

// message i of the last read: its bytes, control messages and sender.
func (b *batch) message(i int) (data, oob []byte, from netip.Addr) {
	h := &b.hdrs[i]
	data = b.bufs[i][:min(int(h.n), b.size)]
	oob = b.oobs[i][:min(int(h.hdr.Controllen), len(b.oobs[i]))]
	name := &b.names[i]
	switch {
	case name.Family == unix.AF_INET && h.hdr.Namelen >= unix.SizeofSockaddrInet4:
		from = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(name)).Addr)
	case name.Family == unix.AF_INET6 && h.hdr.Namelen >= unix.SizeofSockaddrInet6:
		from = netip.AddrFrom16(name.Addr).Unmap()
	}
	return data, oob, from
}

// truncated reports whether message i did not fit its buffer.
func (b *batch) truncated(i int) bool {
	return b.hdrs[i].hdr.Flags&unix.MSG_TRUNC != 0
}
