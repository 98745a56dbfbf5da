// Package testutil holds helpers for tests that exercise real components on
// loopback: a DNS server, free ports, polling.
package testutil

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// DNSServer answers A and AAAA queries on loopback UDP from a fixed table and
// NXDOMAIN for every other name, so tests resolve names without sending a
// query anywhere but 127.0.0.1. It implements just enough of RFC 1035 for the
// Go resolver: one question, answers with compressed names.
func DNSServer(t testing.TB, records map[string]netip.Addr) string {
	t.Helper()
	return DNSServerDual(t, records, nil)
}

// DNSServerDual is DNSServer with a second table, of the names' IPv6
// addresses (records may hold either family): a name in both answers A
// and AAAA queries.
func DNSServerDual(t testing.TB, records, v6 map[string]netip.Addr) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := answer(buf[:n], records, v6); resp != nil {
				_, _ = conn.WriteTo(resp, from)
			}
		}
	}()
	return conn.LocalAddr().String()
}

func answer(q []byte, records, v6 map[string]netip.Addr) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// Walk the question name.
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	question := q[12 : i+5]
	name := strings.ToLower(strings.Join(labels, "."))

	resp := make([]byte, 12, 64)
	copy(resp, q[:2])
	addr, known := records[name]
	addr6, known6 := v6[name]
	var rdata []byte
	switch {
	case known && qtype == 1 && addr.Is4():
		rdata = addr.AsSlice()
	case known && qtype == 28 && addr.Is6():
		rdata = addr.AsSlice()
	case known6 && qtype == 28:
		rdata = addr6.AsSlice()
	}
	known = known || known6
	flags := uint16(0x8180) // response, recursion desired and available, NOERROR
	if !known {
		flags |= 3 // NXDOMAIN
	}
	binary.BigEndian.PutUint16(resp[2:], flags)
	binary.BigEndian.PutUint16(resp[4:], 1)
	resp = append(resp, question...)
	if rdata != nil {
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, 0xc0, 12) // pointer to the question's name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1)  // class IN
		resp = binary.BigEndian.AppendUint32(resp, 60) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp
}
