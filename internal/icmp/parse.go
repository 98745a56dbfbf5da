package icmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// IANA protocol numbers, as icmp.ParseMessage wants them.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// ICMP types the engine sends and understands.
const (
	typeEchoRequest4  = 8
	typeEchoReply4    = 0
	typeUnreachable4  = 3
	typeTimeExceeded4 = 11

	typeEchoRequest6  = 128
	typeEchoReply6    = 129
	typeUnreachable6  = 1
	typePacketTooBig6 = 2
	typeTimeExceeded6 = 3
)

// tokenLen is the part of the payload that identifies an echo: an 8-byte
// per-engine nonce and an 8-byte per-echo counter.
const tokenLen = 16

// message is what one received ICMP message says about an echo.
type message struct {
	reply bool // an echo reply; else an ICMP error about an echo we may have sent
	id    uint16
	seq   uint16
	// data is the echo's payload: the reply's, or as much of the original
	// echo request's as the error quoted (routers may quote none).
	data []byte
	// dst (errors only) is the destination of the quoted echo request.
	dst netip.Addr
	// icmpType and icmpCode of an error.
	icmpType, icmpCode int
	// src and ttl from the IPv4 header (raw IPv4 sockets only).
	src netip.Addr
	ttl int
}

// errNotEcho marks a well-formed ICMP message that is not about an echo
// (another protocol's error, a type we do not handle).
var errNotEcho = errors.New("not about an ICMP echo")

// parseMessage parses what a raw or datagram socket read: an ICMP message,
// preceded by its IPv4 header when withIPv4Header (raw IPv4 sockets).
func parseMessage(v6, withIPv4Header bool, b []byte) (message, error) {
	var m message
	if withIPv4Header {
		// Read in place (x/net/ipv4 allocates a Header per packet): a raw
		// socket hands over the header as it was on the wire.
		if len(b) < ipv4.HeaderLen {
			return m, fmt.Errorf("IPv4 header: only %d bytes", len(b))
		}
		if v := b[0] >> 4; v != 4 {
			return m, fmt.Errorf("IPv4 header: version %d", v)
		}
		hl := int(b[0]&0x0f) * 4
		if hl < ipv4.HeaderLen || hl > len(b) {
			return m, fmt.Errorf("IPv4 header length %d: not within the %d bytes read", hl, len(b))
		}
		m.src, m.ttl = netip.AddrFrom4([4]byte(b[12:16])), int(b[8])
		b = b[hl:]
	}
	if m, ok := echoReply(m, v6, b); ok {
		return m, nil
	}
	proto := protoICMP
	if v6 {
		proto = protoICMPv6
	}
	msg, err := icmp.ParseMessage(proto, b)
	if err != nil {
		return m, fmt.Errorf("ICMP message: %w", err)
	}
	switch body := msg.Body.(type) {
	case *icmp.Echo:
		if msg.Type != ipv4.ICMPTypeEchoReply && msg.Type != ipv6.ICMPTypeEchoReply {
			return m, errNotEcho
		}
		m.reply, m.id, m.seq, m.data = true, uint16(body.ID), uint16(body.Seq), body.Data
		return m, nil
	case *icmp.DstUnreach:
		return m.quoted(v6, msg, body.Data)
	case *icmp.TimeExceeded:
		return m.quoted(v6, msg, body.Data)
	case *icmp.PacketTooBig:
		return m.quoted(v6, msg, body.Data)
	}
	return m, errNotEcho
}

// echoReply reads an echo reply in place. Written by hand for the one
// message that comes a thousand times a second: x/net/icmp allocates a
// Message, an Echo and a copy of the payload for each, which was most of the
// receive loop's garbage. Everything else goes through x/net/icmp.
func echoReply(m message, v6 bool, b []byte) (message, bool) {
	want := byte(typeEchoReply4)
	if v6 {
		want = typeEchoReply6
	}
	if len(b) < 8 || b[0] != want || b[1] != 0 {
		return m, false
	}
	m.reply = true
	m.id, m.seq = binary.BigEndian.Uint16(b[4:6]), binary.BigEndian.Uint16(b[6:8])
	m.data = b[8:]
	return m, true
}

// quoted fills an error message from the IP packet it quotes.
func (m message) quoted(v6 bool, msg *icmp.Message, quote []byte) (message, error) {
	m.icmpType, m.icmpCode = icmpTypeNumber(msg.Type), msg.Code
	var echo []byte
	if v6 {
		h, err := ipv6.ParseHeader(quote)
		if err != nil {
			return m, fmt.Errorf("quoted IPv6 header: %w", err)
		}
		if h.NextHeader != protoICMPv6 {
			return m, errNotEcho
		}
		m.dst, _ = netip.AddrFromSlice(h.Dst.To16())
		echo = quote[ipv6.HeaderLen:]
	} else {
		h, err := ipv4.ParseHeader(quote)
		if err != nil {
			return m, fmt.Errorf("quoted IPv4 header: %w", err)
		}
		if h.Protocol != protoICMP {
			return m, errNotEcho
		}
		if h.Len > len(quote) {
			return m, fmt.Errorf("quoted IPv4 header length %d beyond the %d bytes quoted", h.Len, len(quote))
		}
		m.dst, _ = netip.AddrFromSlice(h.Dst.To4())
		echo = quote[h.Len:]
	}
	var err error
	m.id, m.seq, m.data, err = parseEchoRequest(v6, echo)
	return m, err
}

// parseEchoRequest reads the header of an echo request we sent, as quoted by
// an ICMP error or returned with an error-queue entry.
func parseEchoRequest(v6 bool, b []byte) (id, seq uint16, data []byte, err error) {
	if len(b) < 8 {
		return 0, 0, nil, fmt.Errorf("quoted ICMP header: %d bytes, want 8", len(b))
	}
	want := byte(typeEchoRequest4)
	if v6 {
		want = typeEchoRequest6
	}
	if b[0] != want || b[1] != 0 {
		return 0, 0, nil, errNotEcho
	}
	return binary.BigEndian.Uint16(b[4:6]), binary.BigEndian.Uint16(b[6:8]), b[8:], nil
}

// icmpTypeNumber is the numeric type of an x/net/icmp type.
func icmpTypeNumber(t icmp.Type) int {
	switch t := t.(type) {
	case ipv4.ICMPType:
		return int(t)
	case ipv6.ICMPType:
		return int(t)
	}
	return -1
}

// errorFate maps an ICMP error type to the fate it gives an echo, or Pending
// for types that say nothing final about it.
func errorFate(v6 bool, icmpType int) Fate {
	if v6 {
		switch icmpType {
		case typeUnreachable6, typePacketTooBig6:
			return Unreachable
		case typeTimeExceeded6:
			return TTLExceeded
		}
		return Pending
	}
	switch icmpType {
	case typeUnreachable4:
		return Unreachable
	case typeTimeExceeded4:
		return TTLExceeded
	}
	return Pending
}

// token reads the nonce and echo token from an echo payload; ok is false
// when the payload is too short to carry them (a router quoted too little).
func token(data []byte) (nonce [8]byte, tok uint64, ok bool) {
	if len(data) < tokenLen {
		return nonce, 0, false
	}
	copy(nonce[:], data[:8])
	return nonce, binary.BigEndian.Uint64(data[8:16]), true
}

// buildEcho writes an echo request into buf (grown as needed) and returns it:
// header, nonce, token, then a fill pattern up to size payload bytes. The
// checksum is computed for IPv4; for ICMPv6 the kernel always computes it.
func buildEcho(buf []byte, v6 bool, id, seq uint16, nonce [8]byte, tok uint64, size int) []byte {
	n := 8 + size
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	b := buf[:n]
	b[0], b[1] = typeEchoRequest4, 0
	if v6 {
		b[0] = typeEchoRequest6
	}
	binary.BigEndian.PutUint16(b[2:4], 0)
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	copy(b[8:16], nonce[:])
	binary.BigEndian.PutUint64(b[16:24], tok)
	for i := 24; i < n; i++ {
		b[i] = byte(i)
	}
	if !v6 {
		binary.BigEndian.PutUint16(b[2:4], checksum(b))
	}
	return b
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
