package dns

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	miekg "github.com/miekg/dns"

	"github.com/netpulse/netpulse/internal/probe"
)

// check applies the configured checks to an answer.
func (p *Prober) check(r *miekg.Msg) error {
	if !slices.Contains(p.valid, r.Rcode) {
		return probe.Fail(ErrRcode, fmt.Errorf("response code %s, want %s", rcodeName(r.Rcode),
			strings.Join(p.cfg.ValidRcodes, " or ")))
	}
	a := p.cfg.Answers
	n := len(r.Answer)
	if n < a.Min || (a.Max != nil && n > *a.Max) {
		want := fmt.Sprintf("at least %d", a.Min)
		if a.Max != nil {
			want = fmt.Sprintf("%d to %d", a.Min, *a.Max)
		}
		return probe.Fail(ErrAnswer, fmt.Errorf("%d answer records, want %s", n, want))
	}
	values := make([]string, n)
	for i, rr := range r.Answer {
		values[i] = recordValue(rr)
	}
	for _, re := range p.must {
		if !slices.ContainsFunc(values, re.MatchString) {
			return probe.Fail(ErrAnswer, fmt.Errorf("no answer record matches %q (answers: %q)", re, values))
		}
	}
	for _, re := range p.mustNot {
		if i := slices.IndexFunc(values, re.MatchString); i >= 0 {
			return probe.Fail(ErrAnswer, fmt.Errorf("answer record %q matches %q", values[i], re))
		}
	}
	if p.cfg.Authoritative && !r.Authoritative {
		return probe.Fail(ErrNotAuthoritative, errors.New("the answer is not authoritative (AA flag not set)"))
	}
	return nil
}

// recordValue is a record's text without its header (name, TTL, class,
// type): "192.0.2.1" for an A record, "10 mail.example.com." for an MX.
func recordValue(rr miekg.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}
