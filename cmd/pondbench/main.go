// Command pondbench is the PondSocket load tool: an event-loop WebSocket
// client that speaks the PondSocket protocol and measures a server under
// named scenarios, with its own CPU shown in every report.
//
//	pondbench fanout --target ws://127.0.0.1:8080/api/socket --conns 5000 --messages 2000
//	pondbench ceiling --conns 5000 --messages 2000
//	pondbench report --md out.md --html out.html results/*.json
//
// Run `pondbench help` for every subcommand and flag.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pondsocket/pondsocket/bench/ceiling"
	"github.com/pondsocket/pondsocket/bench/report"
	"github.com/pondsocket/pondsocket/bench/scenario"
)

func main() {
	if scenario.MaybeChild() {
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "pondbench:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return flag.ErrHelp
	}
	switch cmd := args[0]; cmd {
	case "help", "-h", "--help":
		usage(stdout)
		return nil
	case "ceiling-server":
		return ceiling.Main(args[1:], stderr)
	case "report":
		return reportCmd(args[1:], stdout, stderr)
	case "attack":
		return attackCmd(args[1:], stdout, stderr)
	default:
		for _, n := range scenario.Names {
			if n == cmd {
				return scenarioCmd(cmd, args[1:], stdout, stderr)
			}
		}
		usage(stderr)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `pondbench — load generator for PondSocket servers

Usage:
  pondbench <scenario> [flags]        run a scenario and print a Markdown table
  pondbench report [flags] files...   merge JSON results (medians of repeats) into Markdown and HTML
  pondbench ceiling-server [flags]    run the bare gnet ceiling server
  pondbench attack <name> [flags]     run a hostile client against a server (bench/attack/README.md)
  pondbench help                      this text

Scenarios:
`)
	for _, n := range scenario.Names {
		fmt.Fprintf(w, "  %-9s %s\n", n, scenario.Descriptions[n])
	}
	fmt.Fprintf(w, "\nScenario flags:\n")
	fs, _, _ := scenarioFlags("fanout", io.Discard)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nreport flags:\n")
	rf, _ := reportFlags(io.Discard)
	rf.SetOutput(w)
	rf.PrintDefaults()
	fmt.Fprintf(w, "\nceiling-server flags:\n  --addr host:port (default 127.0.0.1:9100)  --event-loops n (default 2)  --batch  --echo  --stdin-eof  --max-lifetime d\n")
	fmt.Fprintf(w, "\nDefaults per scenario differ (e.g. presence: --conns 200); \"pondbench <scenario> -h\" shows them.\n")
}

type cliOpts struct {
	spec        scenario.Spec
	targets     string
	serverPid   int
	morePids    []int
	jsonOut     string
	htmlOut     string
	mdOut       string
	quiet       bool
	allowRemote bool
	ceilLoops   int
	runs        int
	cpuProfile  string
	queryFile   string
}

// scenarioFlags defines the scenario flags; apply must run after Parse to
// copy the duration flags into the spec.
func scenarioFlags(name string, out io.Writer) (fs *flag.FlagSet, o *cliOpts, apply func()) {
	o = &cliOpts{spec: scenario.Defaults(name)}
	s := &o.spec
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.targets, "target", strings.Join(s.Targets, ","), "server URL(s), comma-separated; connection i uses target i mod count (cluster: one per node; ceiling: empty = start one)")
	fs.IntVar(&s.Conns, "conns", s.Conns, "connections (N)")
	fs.StringVar(&s.Transport, "transport", "ws", "ws, sse (event streams, messages POSTed; docs/protocol.md §9) or mixed (odd connection ids on SSE, so the fan-out publisher stays on WebSocket)")
	fs.IntVar(&s.Conns, "n", s.Conns, "shorthand for --conns")
	fs.IntVar(&s.Rooms, "rooms", s.Rooms, "conns/echo: rooms R (connection i joins room i mod R; echo: 0 = one per client)")
	fs.IntVar(&s.RoomSize, "room-size", s.RoomSize, "rooms: members per room K")
	fs.StringVar(&s.Channel, "channel", s.Channel, "channel pattern; :param or {room} is replaced by the room name")
	fs.StringVar(&s.Event, "event", s.Event, "event the server broadcasts to the channel")
	fs.StringVar(&s.EchoEvent, "echo-event", s.EchoEvent, "event the server answers to the sender only")
	fs.IntVar(&s.Messages, "messages", s.Messages, "fanout/cluster/ceiling: messages M the publisher sends")
	fs.IntVar(&s.InFlight, "in-flight", s.InFlight, "fanout/cluster/ceiling: messages in flight W (not yet delivered to every member)")
	fs.Float64Var(&s.Rate, "rate", s.Rate, "rooms: messages per second per client; cluster: messages per second from the publisher (0 = closed loop with --in-flight)")
	fs.BoolVar(&s.SenderAlone, "sender-alone", s.SenderAlone, "cluster: only the publisher on the first target, every other connection on the others (one sender on node A, the receivers on node B)")
	fs.IntVar(&s.Depth, "depth", s.Depth, "echo: requests in flight per client")
	dur := fs.Duration("duration", time.Duration(s.Duration), "rooms/echo: how long clients send")
	fs.IntVar(&s.PayloadSize, "payload", s.PayloadSize, "payload object size in bytes (timestamp, sequence, padding)")
	fs.BoolVar(&s.Presence, "presence", s.Presence, "track presence on join (always on for the presence scenario)")
	fs.Float64Var(&s.JoinRate, "join-rate", s.JoinRate, "presence: joins per second over all clients (0 = all at once)")
	fs.IntVar(&s.ConnectConcurrency, "connect-concurrency", s.ConnectConcurrency, "connection attempts in progress per worker")
	fs.Float64Var(&s.ConnectRate, "connect-rate", s.ConnectRate, "new connections per second over all workers (0 = as fast as possible)")
	ct := fs.Duration("connect-timeout", time.Duration(s.ConnectTimeout), "TCP connect + upgrade timeout")
	hold := fs.Duration("hold", time.Duration(s.Hold), "conns: keep every connection open this long after the last join")
	grace := fs.Duration("grace", time.Duration(s.Grace), "end a phase when nothing arrives for this long")
	timeout := fs.Duration("timeout", time.Duration(s.Timeout), "bound on every waiting phase")
	interval := fs.Duration("interval", time.Duration(s.Interval), "time-series bucket")
	fs.IntVar(&s.Workers, "workers", s.Workers, "worker processes (1 = in this process); raised to fit 18000 connections per process")
	fs.IntVar(&s.Loops, "loops", s.Loops, "event loops per worker")
	fs.IntVar(&s.LocalIPs, "local-ips", s.LocalIPs, "spread connections over source addresses 127.0.0.1..N (0 = one per 2000 connections to a loopback target, -1 = kernel's choice); each has its own ephemeral port range")
	fs.IntVar(&o.serverPid, "server-pid", 0, "server process to sample (0 = the process listening on each target's port, -1 = none)")
	fs.Func("also-pid", "more processes to count as the server, comma-separated (e.g. a cluster's Redis or Kafka)", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return fmt.Errorf("bad pid %q", f)
			}
			o.morePids = append(o.morePids, pid)
		}
		return nil
	})
	fs.StringVar(&o.jsonOut, "json", "", "write the JSON result to this file")
	fs.StringVar(&o.htmlOut, "html", "", "write the HTML report to this file")
	fs.StringVar(&o.mdOut, "md", "", "also write the Markdown table to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no live progress on stderr")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow targets outside 127.0.0.0/8")
	fs.IntVar(&o.ceilLoops, "ceiling-loops", 2, "ceiling: event loops of the ceiling server started for the run")
	fs.BoolVar(&s.CeilingBatch, "ceiling-batch", false, "ceiling: the started server writes the frames waiting for a loop together (one write per connection) instead of one write per message")
	fs.StringVar(&o.queryFile, "query-file", "", "one query string per line (e.g. token=eyJ...; go run ./bench/tokens writes one): connection i appends line i mod count to its URL's query")
	fs.StringVar(&s.Publish, "publish", "ws", "fanout/cluster: how the publisher sends: ws (BROADCAST on its WebSocket) or api (POST /api/broadcast of the first target's server, needs --api-key)")
	fs.StringVar(&s.APIKey, "api-key", "", "--publish api: the server's api.key")
	fs.StringVar(&s.APIAddr, "api-addr", "", "--publish api: the server API's host:port when it listens apart (pondsocket --api-addr); default: the target's")
	fs.IntVar(&s.APIConns, "api-conns", 1, "--publish api: requests in flight at once (more than 1 may reorder messages)")
	fs.IntVar(&o.runs, "runs", 1, "repeat the run this many times and report medians")
	fs.StringVar(&s.Tag, "tag", "", "added to the run's label, to tell apart set-ups with the same parameters (e.g. redis, kafka)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the generator's CPU profile (this process, so use --workers 1) to this file")
	apply = func() {
		s.Duration = scenario.Duration(*dur)
		s.ConnectTimeout = scenario.Duration(*ct)
		s.Hold = scenario.Duration(*hold)
		s.Grace = scenario.Duration(*grace)
		s.Timeout = scenario.Duration(*timeout)
		s.Interval = scenario.Duration(*interval)
	}
	return fs, o, apply
}

func scenarioCmd(name string, args []string, stdout, stderr io.Writer) error {
	fs, o, apply := scenarioFlags(name, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	apply()
	o.spec.Targets = nil
	for _, t := range strings.Split(o.targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.spec.Targets = append(o.spec.Targets, t)
		}
	}
	if o.queryFile != "" {
		q, err := scenario.ReadQueryFile(o.queryFile)
		if err != nil {
			return err
		}
		o.spec.Queries = q
	}
	if !o.allowRemote {
		if err := o.spec.LoopbackOnly(); err != nil {
			return err
		}
	}
	if o.runs < 1 {
		o.runs = 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opt := scenario.Options{
		ServerPid:    o.serverPid,
		MorePids:     o.morePids,
		Command:      "pondbench " + name + " " + strings.Join(redactKey(args), " "),
		CeilingLoops: o.ceilLoops,
	}
	if !o.quiet {
		opt.Progress = stderr
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var results []*report.Result
	for i := 0; i < o.runs; i++ {
		if o.runs > 1 {
			fmt.Fprintf(stderr, "run %d of %d\n", i+1, o.runs)
		}
		res, err := scenario.Run(ctx, o.spec, opt)
		if err != nil {
			return err
		}
		results = append(results, res)
		if ctx.Err() != nil {
			break
		}
	}
	var md bytes.Buffer
	if len(results) == 1 {
		report.WriteMarkdown(&md, results[0])
	} else {
		report.WriteSuiteMarkdown(&md, report.Groups(results))
	}
	_, _ = stdout.Write(md.Bytes())
	if o.mdOut != "" {
		if err := os.WriteFile(o.mdOut, md.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if o.jsonOut != "" {
		if len(results) == 1 {
			if err := results[0].Write(o.jsonOut); err != nil {
				return err
			}
		} else if err := writeJSONArray(o.jsonOut, results); err != nil {
			return err
		}
	}
	if o.htmlOut != "" {
		f, err := os.Create(o.htmlOut)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := report.WriteHTML(f, "pondbench "+name, results, nil); err != nil {
			return err
		}
	}
	return nil
}

// redactKey hides the value of --api-key in the command a result records.
func redactKey(args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		switch {
		case a == "--api-key" || a == "-api-key":
			if i+1 < len(out) {
				out[i+1] = "***"
			}
		case strings.HasPrefix(a, "--api-key=") || strings.HasPrefix(a, "-api-key="):
			k, _, _ := strings.Cut(a, "=")
			out[i] = k + "=***"
		}
	}
	return out
}

// writeJSONArray writes results compactly: a suite's file holds every
// run's histogram and time series.
func writeJSONArray(path string, rs []*report.Result) error {
	b, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

type reportOpts struct {
	md, html, json, title, preamble string
}

func reportFlags(out io.Writer) (*flag.FlagSet, *reportOpts) {
	o := &reportOpts{}
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.md, "md", "", "write the Markdown (summary, tables of medians) to this file (default stdout)")
	fs.StringVar(&o.html, "html", "", "write the HTML report to this file")
	fs.StringVar(&o.json, "json", "", "write every input result, as one JSON array, to this file")
	fs.StringVar(&o.title, "title", "PondSocket benchmark", "report title")
	fs.StringVar(&o.preamble, "preamble", "", "Markdown file to put before the tables (machine, commands, notes)")
	return fs, o
}

func reportCmd(args []string, stdout, stderr io.Writer) error {
	fs, o := reportFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("report: no result files given")
	}
	rs, err := report.Read(fs.Args()...)
	if err != nil {
		return err
	}
	report.SortByScenario(rs, scenario.Names)
	gs := report.Groups(rs)
	var md bytes.Buffer
	if err := writePreamble(&md, o.preamble); err != nil {
		return err
	}
	md.WriteString("## Summary (medians)\n\n")
	report.WriteSummaryMarkdown(&md, gs)
	md.WriteString("## Details\n\n")
	report.WriteSuiteMarkdown(&md, gs)
	if err := writeMarkdown(stdout, o.md, md.Bytes()); err != nil {
		return err
	}
	if o.json != "" {
		if err := writeJSONArray(o.json, rs); err != nil {
			return err
		}
	}
	if o.html != "" {
		var notes []string
		if o.preamble != "" {
			b, _ := os.ReadFile(o.preamble)
			notes = append(notes, string(b))
		}
		f, err := os.Create(o.html)
		if err != nil {
			return err
		}
		defer f.Close()
		return report.WriteHTML(f, o.title, rs, notes)
	}
	return nil
}

// writePreamble copies the Markdown file at path (none when path is empty)
// to the top of a report, followed by a blank line.
func writePreamble(md *bytes.Buffer, path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	md.Write(b)
	md.WriteString("\n")
	return nil
}

// writeMarkdown writes a report to the file at path, or to stdout when
// path is empty.
func writeMarkdown(stdout io.Writer, path string, md []byte) error {
	if path == "" {
		_, err := stdout.Write(md)
		return err
	}
	return os.WriteFile(path, md, 0o644)
}
