package icmplab

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"net/netip"
)

// request is an ICMP echo request as the lab saw it on the wire.
type request struct {
	src, dst netip.Addr
	id, seq  uint16
	hash     uint64 // FNV-1a of the echo payload
	size     int    // payload bytes
}

const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// key identifies an echo and its reply: pinger and lab addresses (the
// reply's are swapped back), identifier, sequence, payload.
type key struct {
	pinger, lab netip.Addr
	id, seq     uint16
	hash        uint64
}

func (r request) key() key { return key{r.src, r.dst, r.id, r.seq, r.hash} }

func (r request) replyKey() key { return key{r.dst, r.src, r.id, r.seq, r.hash} }

var errNotEcho = errors.New("not an ICMP echo")

// parseEcho reads an IPv4 or IPv6 packet (no link header) and returns the
// echo request (or, with reply, the echo reply) it carries. IPv6 extension
// headers are not followed: pingers' echoes have none.
func parseEcho(pkt []byte, reply bool) (request, error) {
	typ4, typ6 := byte(8), byte(128)
	if reply {
		typ4, typ6 = 0, 129
	}
	if len(pkt) < 1 {
		return request{}, errNotEcho
	}
	var r request
	var icmp []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return r, errNotEcho
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		frag := binary.BigEndian.Uint16(pkt[6:8])
		if ihl < 20 || total < ihl || total > len(pkt) || pkt[9] != protoICMP || frag&0x3fff != 0 {
			return r, errNotEcho
		}
		r.src, _ = netip.AddrFromSlice(pkt[12:16])
		r.dst, _ = netip.AddrFromSlice(pkt[16:20])
		icmp = pkt[ihl:total]
		if len(icmp) < 8 || icmp[0] != typ4 || icmp[1] != 0 {
			return r, errNotEcho
		}
	case 6:
		if len(pkt) < 40 {
			return r, errNotEcho
		}
		plen := int(binary.BigEndian.Uint16(pkt[4:6]))
		if pkt[6] != protoICMPv6 || 40+plen > len(pkt) {
			return r, errNotEcho
		}
		r.src, _ = netip.AddrFromSlice(pkt[8:24])
		r.dst, _ = netip.AddrFromSlice(pkt[24:40])
		icmp = pkt[40 : 40+plen]
		if len(icmp) < 8 || icmp[0] != typ6 || icmp[1] != 0 {
			return r, errNotEcho
		}
	default:
		return r, errNotEcho
	}
	r.id = binary.BigEndian.Uint16(icmp[4:6])
	r.seq = binary.BigEndian.Uint16(icmp[6:8])
	h := fnv.New64a()
	_, _ = h.Write(icmp[8:])
	r.hash = h.Sum64()
	r.size = len(icmp) - 8
	return r, nil
}

// buildReply turns an echo request (as parsed by parseEcho) into its echo
// reply in place: addresses swapped, TTL/hop limit 64, type changed and
// checksums recomputed. It returns the reply's length.
func buildReply(pkt []byte) int {
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		var a [4]byte
		copy(a[:], pkt[12:16])
		copy(pkt[12:16], pkt[16:20])
		copy(pkt[16:20], a[:])
		pkt[8] = 64
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:12], checksum(pkt[:ihl], 0))
		icmp := pkt[ihl:total]
		icmp[0] = 0
		icmp[2], icmp[3] = 0, 0
		binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp, 0))
		return total
	default:
		plen := int(binary.BigEndian.Uint16(pkt[4:6]))
		var a [16]byte
		copy(a[:], pkt[8:24])
		copy(pkt[8:24], pkt[24:40])
		copy(pkt[24:40], a[:])
		pkt[7] = 64
		icmp := pkt[40 : 40+plen]
		icmp[0] = 129
		icmp[2], icmp[3] = 0, 0
		// Pseudo-header: source, destination, upper-layer length, next header.
		var sum uint32
		sum = sum16(pkt[8:40], sum)
		sum += uint32(plen) + protoICMPv6
		binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp, sum))
		return 40 + plen
	}
}

func sum16(b []byte, sum uint32) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	sum = sum16(b, sum)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
