package probe

// Admitter is implemented by probers that may refuse a run before it
// starts, having measured nothing: a speed test over its data budget. The
// caller asks before each run and records a refusal as a skipped run
// (outcome="skipped", error_type=reason) instead of a failure, so an
// exhausted budget does not look like a broken link.
type Admitter interface {
	// Admit returns "" to let the run go ahead, or a bounded reason (a
	// constant of the probe type) and an error saying why not.
	Admit(t *Target) (reason string, err error)
}
