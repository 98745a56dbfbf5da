package ping

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/netpulse/netpulse/internal/history"
	"github.com/netpulse/netpulse/internal/icmp"
	"github.com/netpulse/netpulse/internal/probe"
)

// BenchmarkEchoesStored stores the echoes of a non-clean run (count 10:
// one lost, the rest replied; and all lost) per iteration in a real
// history file and reports what one run takes there: its JSON, and the
// bytes in use in the evidence bucket's leaf pages (key, value and
// bbolt's element header), per run.
func BenchmarkEchoesStored(b *testing.B) {
	for _, c := range []struct {
		name string
		lost func(seq int) bool
	}{{"count10-1lost", func(seq int) bool { return seq == 3 }}, {"count10-alllost", func(int) bool { return true }}} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			s, err := history.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			echoes := make([]icmp.Echo, 10)
			for i := range echoes {
				echoes[i] = icmp.Echo{Seq: i, Sent: start.Add(time.Duration(i)*time.Second + 37*time.Microsecond), Fate: icmp.Replied,
					RTT: 12*time.Millisecond + time.Duration(i)*123457*time.Nanosecond, TTL: 57, From: netip.MustParseAddr("192.0.2.1")}
				if c.lost(i) {
					echoes[i].Fate, echoes[i].RTT, echoes[i].TTL = icmp.Lost, 0, 0
				}
			}
			recs := echoRecords(echoes, start, true)
			n := 0
			for b.Loop() {
				id := probe.RunID{Series: 42, Start: start.Add(time.Duration(n) * time.Second).UnixNano()}
				if err := s.PutEvidence(id, EvidenceEchoes, recs); err != nil {
					b.Fatal(err)
				}
				n++
			}
			js, err := json.Marshal(recs)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(js)), "json-bytes/run")
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			db, err := bolt.Open(filepath.Join(dir, history.FileName), 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			_ = db.View(func(tx *bolt.Tx) error {
				st := tx.Bucket([]byte("evidence")).Stats()
				b.ReportMetric(float64(st.LeafInuse)/float64(st.KeyN), "leaf-bytes/run")
				return nil
			})
		})
	}
}
