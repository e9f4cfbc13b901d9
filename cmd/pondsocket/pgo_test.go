package main

import (
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkProfileWorkload is the workload default.pgo is recorded from
// (scripts/pgo.sh): the profile the Go compiler optimises this command
// with (profile-guided optimisation, applied by go build automatically).
// The demo server runs in this process and pondbench drives it from
// others, so the samples are the server's: request/reply between 1 000
// clients, then a fan-out to 5 000 members. Run it once:
//
//	go test -run '^$' -bench ProfileWorkload -benchtime 1x -cpuprofile default.pgo ./cmd/pondsocket
func BenchmarkProfileWorkload(b *testing.B) {
	pb := filepath.Join(b.TempDir(), "pondbench")
	if out, err := exec.Command("go", "build", "-o", pb, "../pondbench").CombinedOutput(); err != nil {
		b.Fatalf("build pondbench: %v\n%s", err, out)
	}
	cfg, err := parseConfig([]string{"--addr", "127.0.0.1:0", "--log-level", "error"},
		func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := newServer(cfg, newLogger(cfg, io.Discard))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Stop(5 * time.Second) }()
	target := "ws://" + srv.Addr().String() + "/api/socket"
	load := func(args ...string) {
		args = append(args, "--target", target, "--quiet")
		if out, err := exec.Command(pb, args...).CombinedOutput(); err != nil {
			b.Fatalf("pondbench %v: %v\n%s", args, err, out)
		}
	}
	for b.Loop() {
		load("echo", "--conns", "1000", "--depth", "1", "--rate", "0", "--duration", "8s")
		load("fanout", "--conns", "5000", "--messages", "300", "--in-flight", "8")
	}
}
