// Command idleconns measures a server's resident memory per idle
// connection: it opens N connections one after another (blocking sockets,
// no join, nothing sent after the upgrade or the stream's CONNECT), waits,
// and reads the server's VmRSS before and after. The connections are
// upgraded WebSockets (optionally offering permessage-deflate) or, with
// -sse, event streams of the SSE transport (docs/protocol.md §9).
//
//	go run ./bench/idleconns 127.0.0.1:8080 $(pgrep -f 'pondsocket --addr 127.0.0.1:8080') [deflate]
//	go run ./bench/idleconns -sse -n 10000 127.0.0.1:8080 $(pgrep -f 'pondsocket --addr 127.0.0.1:8080')
//
// One process may hold 20 000 open files here: keep -n below that.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func rss(pid string) int {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

func main() {
	n := flag.Int("n", 15000, "connections to open (at most 19000: the per-process open-files limit is 20000)")
	sse := flag.Bool("sse", false, "open SSE event streams (GET with Accept: text/event-stream) instead of WebSockets")
	path := flag.String("path", "/api/socket", "endpoint path")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: idleconns [-n 15000] [-sse] [-path /api/socket] ADDR PID [deflate]   (ADDR must be on 127.0.0.0/8)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 2 || *n < 1 || *n > 19000 {
		flag.Usage()
		os.Exit(2)
	}
	addr, pid := flag.Arg(0), flag.Arg(1)
	if host, _, _ := net.SplitHostPort(addr); !strings.HasPrefix(host, "127.") {
		fmt.Fprintln(os.Stderr, "idleconns: only loopback targets")
		os.Exit(2)
	}
	deflate := flag.Arg(2) == "deflate"
	if deflate && *sse {
		fmt.Fprintln(os.Stderr, "idleconns: deflate is a WebSocket extension; not with -sse")
		os.Exit(2)
	}
	before := rss(pid)
	var conns []net.Conn
	for i := 0; i < *n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Println("dial", i, err)
			os.Exit(1)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if *sse {
			err = openStream(c, *path)
		} else {
			err = upgrade(c, *path, deflate)
		}
		if err != nil {
			fmt.Println("connection", i, err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	time.Sleep(3 * time.Second) // let the server settle; nothing to wait for
	after := rss(pid)
	runtime.KeepAlive(conns) // unreachable net.Conns are closed by their finalizers
	transport := "ws"
	if *sse {
		transport = "sse"
	}
	fmt.Printf("transport=%s deflate=%v conns=%d rss_before=%dKiB rss_after=%dKiB per_conn=%.2fKiB\n", transport, deflate, *n, before, after, float64(after-before)/float64(*n))
}

// upgrade performs the WebSocket handshake on c.
func upgrade(c net.Conn, path string, deflate bool) error {
	ext := ""
	if deflate {
		ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", path, ext)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, "101") {
		return fmt.Errorf("upgrade: %q %v", line, err)
	}
	hasExt := false
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("upgrade head: %v", err)
		}
		if strings.HasPrefix(strings.ToLower(l), "sec-websocket-extensions") {
			hasExt = true
		}
		if l == "\r\n" {
			break
		}
	}
	if deflate != hasExt {
		return fmt.Errorf("negotiation mismatch: extension %v", hasExt)
	}
	return nil
}

// openStream opens an event stream on c and reads up to the end of its
// first event (CONNECT): from then on the server holds an open stream.
func openStream(c net.Conn, path string) error {
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", path)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		return fmt.Errorf("stream: %q %v", line, err)
	}
	id := ""
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("stream head: %v", err)
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "X-Connection-ID") {
			id = strings.TrimSpace(v)
		}
		if l == "\r\n" {
			break
		}
	}
	if id == "" {
		return fmt.Errorf("stream without X-Connection-ID")
	}
	data := false
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("stream: %v before the first event ended", err)
		}
		switch {
		case strings.HasPrefix(l, "data:"):
			if !data && !strings.Contains(l, `"CONNECT"`) {
				return fmt.Errorf("first event is not CONNECT: %q", l)
			}
			data = true
		case l == "\n" && data:
			return nil
		}
	}
}
