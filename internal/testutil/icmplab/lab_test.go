package icmplab

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	l := Start(t, Schedule{Base: 10 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.1, Seed: 1})
	for _, dst := range []netip.Addr{l.Addr4, l.Addr6} {
		for name, p := range map[string]Pinger{"ping": l.Iputils(), "fping": l.Fping()} {
			j, err := l.Run(context.Background(), p, dst, 100, 20*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: truth %+v read %+v lossExact %v meanErr %v stdErr %v jitErr %v err p0 %v p50 %v p99 %v late p50 %v p99 %v max %v",
				name, dst, j.Truth, j.Read, j.LossExact, j.MeanErr(), j.StdErr(), j.JitterErr(),
				Quantile(j.Errors, 0), Quantile(j.Errors, .5), Quantile(j.Errors, .99), Quantile(j.Late, .5), Quantile(j.Late, .99), Quantile(j.Late, 1))
		}
	}
}
