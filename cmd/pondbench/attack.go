package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pondsocket/pondsocket/bench/attack"
	"github.com/pondsocket/pondsocket/bench/scenario"
)

func attackUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: pondbench attack <name> [flags]\n\nAttacks (bench/attack/README.md says what a healthy server does):\n")
	for _, n := range attack.Names {
		fmt.Fprintf(w, "  %-13s %s\n", n, attack.Description(n))
	}
	fmt.Fprintf(w, "\n  pondbench attack report [--md out.md] [--preamble notes.md] files.json...\n      medians of the runs in --json files, grouped by attack\n")
	fmt.Fprintf(w, "\nFlags (defaults differ per attack; \"pondbench attack <name> -h\" shows them):\n")
	fs, _, _ := attackFlags("connburst", io.Discard)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

type attackOpts struct {
	cfg         attack.Config
	jsonOut     string
	mdOut       string
	runs        int
	quiet       bool
	allowRemote bool
}

func attackFlags(name string, out io.Writer) (*flag.FlagSet, *attackOpts, error) {
	for _, n := range attack.Names {
		if n == name {
			o := &attackOpts{cfg: attack.Defaults(name), runs: 1}
			c := &o.cfg
			fs := flag.NewFlagSet("attack "+name, flag.ContinueOnError)
			fs.SetOutput(out)
			fs.StringVar(&c.Target, "target", c.Target, "the PondSocket endpoint, ws://host:port/path")
			fs.StringVar(&c.Channel, "channel", c.Channel, "channel pattern; :param is replaced by a room name")
			fs.IntVar(&c.Conns, "conns", c.Conns, "connections the attack opens (bigpresence: attackers)")
			fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "dials in progress at once")
			fs.IntVar(&c.Listeners, "listeners", c.Listeners, "bigpresence: honest members; presencespam: listeners")
			fs.IntVar(&c.Count, "count", c.Count, "channels, messages, calls per connection, polls, updates or requests per kind")
			fs.IntVar(&c.Size, "size", c.Size, "bytes of a channel name, presence field, message or status")
			fs.Int64Var(&c.Bytes, "bytes", c.Bytes, "pingflood: bytes of pings")
			fs.Float64Var(&c.Rate, "rate", c.Rate, "presencespam: updates per second (0 = as fast as possible)")
			fs.StringVar(&c.Event, "event", c.Event, "the event the attack sends (leak: comma-separated)")
			fs.IntVar(&c.HandlerMS, "handler-ms", c.HandlerMS, "milliseconds asked of the slow event (payload \"ms\")")
			fs.DurationVar(&c.Hold, "hold", c.Hold, "connburst, capblind: keep the connections open this long")
			fs.DurationVar(&c.Duration, "duration", c.Duration, "bound on the attack phase")
			fs.DurationVar(&c.After, "after", c.After, "read the server again this long after the attack")
			fs.DurationVar(&c.DialTimeout, "dial-timeout", c.DialTimeout, "connect + upgrade (and raw response) timeout")
			fs.StringVar(&c.BystanderEvent, "bystander-event", c.BystanderEvent, "event the server answers to the sender (the bystander's echo)")
			fs.DurationVar(&c.BystanderEvery, "bystander-every", c.BystanderEvery, "the bystander's request interval")
			fs.IntVar(&c.ServerPid, "server-pid", 0, "server process to sample (0 = the process listening on the target's port, -1 = none)")
			fs.StringVar(&o.jsonOut, "json", "", "write the JSON report (all runs and the medians) to this file")
			fs.StringVar(&o.mdOut, "md", "", "also write the Markdown to this file")
			fs.IntVar(&o.runs, "runs", 1, "repeat and report medians")
			fs.BoolVar(&o.quiet, "quiet", false, "no progress on stderr")
			fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow targets outside 127.0.0.0/8 (attack only servers you run)")
			return fs, o, nil
		}
	}
	return nil, nil, fmt.Errorf("unknown attack %q", name)
}

func attackCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		attackUsage(stdout)
		if len(args) == 0 {
			return flag.ErrHelp
		}
		return nil
	}
	name := args[0]
	if name == "report" {
		return attackReportCmd(args[1:], stdout, stderr)
	}
	fs, o, err := attackFlags(name, stderr)
	if err != nil {
		attackUsage(stderr)
		return err
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if !o.allowRemote {
		spec := scenario.Spec{Targets: []string{o.cfg.Target}}
		if err := spec.LoopbackOnly(); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress io.Writer = stderr
	if o.quiet {
		progress = nil
	}
	var rs []*attack.Report
	for i := 0; i < max(1, o.runs); i++ {
		if o.runs > 1 {
			fmt.Fprintf(stderr, "%s: run %d of %d\n", name, i+1, o.runs)
		}
		r, err := attack.Run(ctx, o.cfg, progress)
		if r != nil {
			r.Config.Attack = name
			rs = append(rs, r)
		}
		if err != nil {
			if errors.Is(err, context.Canceled) && len(rs) > 0 {
				break
			}
			return err
		}
	}
	m := attack.Median(rs)
	var md bytes.Buffer
	attack.WriteMarkdown(&md, m)
	fmt.Fprintf(&md, "Command: `pondbench attack %s %s`\n\n", name, strings.Join(args[1:], " "))
	_, _ = stdout.Write(md.Bytes())
	if o.mdOut != "" {
		if err := os.WriteFile(o.mdOut, md.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if o.jsonOut != "" {
		all := rs
		if len(rs) > 1 {
			all = append(all, m)
		}
		if err := attack.WriteJSON(o.jsonOut, all); err != nil {
			return err
		}
	}
	return nil
}

func attackReportCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("attack report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mdOut := fs.String("md", "", "write the Markdown to this file (default stdout)")
	preamble := fs.String("preamble", "", "Markdown file to put before the tables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("attack report: no JSON files given")
	}
	rs, err := attack.ReadJSON(fs.Args()...)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	if err := writePreamble(&md, *preamble); err != nil {
		return err
	}
	attack.WriteSuiteMarkdown(&md, rs)
	return writeMarkdown(stdout, *mdOut, md.Bytes())
}
