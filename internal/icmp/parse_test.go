package icmp

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

var testNonce = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}

// reply turns an echo request we built into the reply a host would send.
func reply(t testing.TB, v6 bool, req []byte) []byte {
	t.Helper()
	var typ icmp.Type = ipv4.ICMPTypeEchoReply
	proto := protoICMP
	if v6 {
		typ, proto = ipv6.ICMPTypeEchoReply, protoICMPv6
	}
	m, err := icmp.ParseMessage(proto, req)
	if err != nil {
		t.Fatal(err)
	}
	m.Type = typ
	b, err := m.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseReply(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		req := buildEcho(nil, v6, 0x1234, 0xbeef, testNonce, 42, 56)
		if !v6 && checksum(req) != 0 {
			t.Errorf("IPv4 echo checksum does not verify")
		}
		m, err := parseMessage(v6, false, reply(t, v6, req))
		if err != nil {
			t.Fatal(err)
		}
		nonce, tok, ok := token(m.data)
		if !m.reply || m.id != 0x1234 || m.seq != 0xbeef || !ok || nonce != testNonce || tok != 42 || len(m.data) != 56 {
			t.Errorf("v6=%v: parsed %+v (token %v %d %v)", v6, m, nonce, tok, ok)
		}
	}
}

// TestParseQuotedError: a raw socket's ICMP error quoting our echo (with the
// IPv4 header in front, as raw IPv4 sockets read it).
func TestParseQuotedError(t *testing.T) {
	echo := buildEcho(nil, false, 7, 9, testNonce, 1, 16)
	inner := ipv4.Header{Version: 4, Len: 20, TotalLen: 20 + len(echo), TTL: 1, Protocol: protoICMP,
		Src: net.IPv4(198, 18, 0, 1), Dst: net.IPv4(198, 18, 9, 9)}
	ih, _ := inner.Marshal()
	body, _ := (&icmp.Message{Type: ipv4.ICMPTypeTimeExceeded, Body: &icmp.TimeExceeded{Data: append(ih, echo[:8]...)}}).Marshal(nil)
	outer := ipv4.Header{Version: 4, Len: 20, TotalLen: 20 + len(body), TTL: 63, Protocol: protoICMP,
		Src: net.IPv4(198, 18, 0, 2), Dst: net.IPv4(198, 18, 0, 1)}
	oh, _ := outer.Marshal()
	m, err := parseMessage(false, true, append(oh, body...))
	if err != nil {
		t.Fatal(err)
	}
	if m.reply || m.icmpType != 11 || m.id != 7 || m.seq != 9 || m.dst != netip.MustParseAddr("198.18.9.9") ||
		m.src != netip.MustParseAddr("198.18.0.2") || m.ttl != 63 || len(m.data) != 0 {
		t.Errorf("parsed %+v", m)
	}
	if _, _, ok := token(m.data); ok {
		t.Error("a quote of 8 bytes has no token")
	}
	if errorFate(false, m.icmpType) != TTLExceeded {
		t.Errorf("fate %v", errorFate(false, m.icmpType))
	}
}

// FuzzParseMessage: no input read from a socket makes the parser panic or
// return data it did not get.
func FuzzParseMessage(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		req := buildEcho(nil, v6, 1, 2, testNonce, 3, 24)
		f.Add(reply(f, v6, req), v6, false)
		f.Add(req, v6, false)
	}
	f.Add([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1}, false, true)
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 28}, false, false)
	f.Fuzz(func(t *testing.T, b []byte, v6, withHeader bool) {
		m, err := parseMessage(v6, withHeader, b)
		if err != nil {
			return
		}
		if len(m.data) > 0 && !bytes.Contains(b, m.data) {
			t.Errorf("data %x not from the input", m.data)
		}
		_, _, _ = token(m.data)
		_, _, _, _ = parseEchoRequest(v6, m.data)
		_ = errorFate(v6, m.icmpType)
	})
}
