// Package scenario runs the load tool's named scenarios (conns, fanout,
// rooms, presence, echo, cluster, ceiling) and merges what its workers saw
// into one report.Result.
//
// # Parent and workers
//
// Run is the parent. It starts Spec.Workers workers, each owning a
// contiguous share of the connection ids, and drives them through the same
// phases with JSON lines (wire.go): setup (dial, join) → ready → start (the
// measured phase, at an agreed wall-clock instant) → stop → stopped →
// collect → result → quit. One worker runs inside the parent's process over
// in-memory pipes; more are this executable run again (MaybeChild turns the
// child into a worker), because one process here can hold at most ~19 000
// sockets. The parent samples the server's and the workers' /proc files
// itself, so the generator's own CPU is in every report.
//
// Everything that can wait is bounded: every phase by Spec.Timeout, drains
// by Spec.Grace without progress, dials by ConnectTimeout. Nothing loops
// forever, and a worker whose parent goes away reads EOF and exits.
//
// # Measuring
//
// A measured message carries {"ts": "<unix ns>", "seq": n, "src": id}
// (the timestamp is a string so that a server re-encoding numbers through
// float64 cannot round it). Receivers are on the same machine, so latency
// is the read time minus ts on one clock. Histograms are log-linear
// (package hist) and merge exactly across loops and processes.
//
// The fan-out publisher keeps at most W messages in flight: the parent
// grants credit = (deliveries so far / members) + refused + W from the
// workers' counters, so the server's queues stay bounded and throughput is
// what it can sustain, not what it can buffer.
//
// # Concurrency inside a worker
//
// A member (one connection) belongs to the event loop that owns its socket
// (id modulo loops); only that loop reads or writes it. Each loop has its
// own histograms and counters; counters that the reporter goroutine reads
// are atomic, histograms are read by a task posted to the loop. The command
// goroutine never touches members directly: it posts to the loops.
package scenario
