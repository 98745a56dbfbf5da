// Package icmplab is a lab that knows the truth about ICMP echoes, for
// proving pingers' accuracy in tests and benchmarks (the kernel here has no
// netem).
//
// A lab is a network namespace (np-lab-<pid>-<n>) whose TUN device lab0
// holds Local4 (198.18.0.2/24) and Local6 (fd00:1ab::2/64); every other
// address of those prefixes (Addr4, Addr6) is answered by a userspace
// responder: it delays each echo request by a delay drawn from a Schedule
// (base ± uniform jitter, deterministic from the seed, destination and
// sequence number), drops a share of them, and records what it did (Echo).
// Pingers run inside the namespace: tools through Command (ip netns exec),
// Go code through Do (a locked OS thread that joined the namespace; open
// the sockets there) or, better, in a child process started with Command.
// Start builds a lab for a test and removes it at the test's cleanup, pass
// or fail; New and Close do it for a program.
//
//	l := icmplab.Start(t, icmplab.Schedule{Base: 10 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.1, Seed: 1})
//	j, err := l.Run(ctx, pinger, l.Addr4, 100, 20*time.Millisecond) // pinger: an icmplab.Pinger
//	// j.Errors: per echo, reading - truth; j.LossExact; j.MeanErr(), j.StdErr(), j.JitterErr()
//
// # The truth
//
// An echo's true RTT is Delivered - Sent, two kernel timestamps:
//   - Sent: a packet socket on lab0 sees the request as the kernel transmits
//     it (dev_queue_xmit, inside the pinger's sendmsg) and stamps it then.
//     The TUN driver's own transmit timestamp, which SO_TIMESTAMPING's
//     TX_SOFTWARE reports to a pinger, follows in the same call.
//   - Delivered: the responder writes the reply to the TUN device; within
//     that write the kernel stamps it on receipt and delivers it to the
//     pinger's socket. The same packet socket sees it with that stamp: the
//     very value SO_TIMESTAMP(NS) hands the pinger.
//
// So a pinger timestamping both ends in the kernel reads the truth to within
// a few µs: measured -0.1 to -2.7 µs per echo
// (TestKernelTimestampsReadTheTruth). The responder polls the tap on a
// timer, because a reader sleeping on it would be woken from inside the
// pinger's sendmsg, between the two transmit stamps: that read 15 µs low.
// iputils ping (send time taken just before sendmsg, kernel receive time)
// reads +0.01 to +0.03 ms above the truth per echo (median), fping the same.
//
// The responder's own timing does not enter the truth: it reads requests
// with their kernel timestamps, so its polling period (1 ms) and wake-up
// latency do not matter unless they exceed the delay (use paths of 2 ms and
// more), and a late reply is recorded as the longer RTT it really was.
//
// # The lab's error budget
//
// Against its schedule, the responder is as good as the machine lets it be:
// a SCHED_FIFO thread sleeps in ppoll (1 ns timer slack) until 150 µs before
// a reply is due, then spins, and writes. Measured (Echo.Late, delivered vs
// scheduled) on the shared 2-core VM at load average 6–10: p50 0.01 ms, p99
// 0.14–0.45 ms, with rare spikes of 1.6 to 88 ms when the machine stalls (a
// lone SCHED_FIFO thread there overslept a 1 ms sleep by p99 0.14–0.19 ms,
// p99.9 1.4–2 ms, max 2–30 ms). The lab uses under 1 % of a core at 50
// echoes/s.
//
// Lateness is schedule fidelity, not truth: judge pingers against Echo.RTT,
// never against the scheduled Delay; judge medians and loss tightly, single
// echoes and means loosely. A reply held back until after the pinger has
// returned counts as lost for it (Echo.Unheard, Judgement.Unheard).
//
// Side effects while a lab runs: GOMAXPROCS is raised by two per lab,
// because the responder's threads sit in blocking syscalls and the runtime
// leaves their Ps idle for up to 10 ms before giving them to a Go pinger
// under test in the same process; the namespace allows datagram ICMP
// sockets to every group (ping_group_range), whatever the host's setting.
package icmplab
