package history

import (
	"testing"
)

// FuzzDecodeSummary: a damaged summary is an error, never a panic or a
// huge allocation, and one that decodes encodes back to what decodes the
// same, and can be merged and read for quantiles.
func FuzzDecodeSummary(f *testing.F) {
	sum := newSummary(1)
	sum.runs, sum.failures, sum.durSum = 60, 2, 3
	*sum.stat(1) = vsum{name: 1, n: 58, min: 0.001, max: 0.02, sum: 0.3}
	*sum.stat(3) = vsum{name: 3, n: 60, min: 1, max: 1, sum: 60}
	sum.addDist(0.01, 40)
	sum.addDist(0.002, 18)
	f.Add(sum.encode(nil))
	f.Add([]byte{summaryVersion, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{summaryVersion, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSummary(data)
		if err != nil {
			return
		}
		again, err := decodeSummary(s.encode(nil))
		if err != nil {
			t.Fatalf("a decoded summary does not decode once encoded again: %v", err)
		}
		if again.runs != s.runs || again.failures != s.failures || len(again.values) != len(s.values) {
			t.Fatalf("round trip changed the summary: %+v, then %+v", s, again)
		}
		acc := newSummary(s.dist)
		acc.merge(s)
		acc.merge(again)
		_, _ = acc.quantiles()
	})
}
