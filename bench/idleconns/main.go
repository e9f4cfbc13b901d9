// Command idleconns measures a server's resident memory per idle upgraded
// WebSocket connection: it opens N connections one after another (blocking
// sockets, no join, nothing sent after the upgrade), optionally offering
// permessage-deflate, waits, and reads the server's VmRSS before and after.
//
//	go run ./bench/idleconns 127.0.0.1:8080 $(pgrep -f 'pondsocket --addr 127.0.0.1:8080') [deflate]
package main

import (
	"bufio"
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
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: idleconns ADDR PID [deflate]   (opens 15000 connections; ADDR must be on 127.0.0.0/8)")
		os.Exit(2)
	}
	addr, pid, n := os.Args[1], os.Args[2], 15000
	if host, _, _ := net.SplitHostPort(addr); !strings.HasPrefix(host, "127.") {
		fmt.Fprintln(os.Stderr, "idleconns: only loopback targets")
		os.Exit(2)
	}
	deflate := len(os.Args) > 3 && os.Args[3] == "deflate"
	before := rss(pid)
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Println("dial", i, err)
			os.Exit(1)
		}
		ext := ""
		if deflate {
			ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
		}
		fmt.Fprintf(c, "GET /api/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", ext)
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, "101") {
			fmt.Println("upgrade", i, line, err)
			os.Exit(1)
		}
		hasExt := false
		for {
			l, _ := br.ReadString('\n')
			if strings.HasPrefix(strings.ToLower(l), "sec-websocket-extensions") {
				hasExt = true
			}
			if l == "\r\n" {
				break
			}
		}
		if deflate != hasExt {
			fmt.Println("negotiation mismatch", hasExt)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	time.Sleep(3 * time.Second) // let the server settle; nothing to wait for
	after := rss(pid)
	runtime.KeepAlive(conns) // unreachable net.Conns are closed by their finalizers
	fmt.Printf("deflate=%v conns=%d rss_before=%dKiB rss_after=%dKiB per_conn=%.2fKiB\n", deflate, n, before, after, float64(after-before)/float64(n))
}
