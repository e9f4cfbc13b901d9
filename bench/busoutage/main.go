// Command busoutage measures what a Redis outage costs cross-node
// messages: two cluster nodes (the Redis backend) on a redis-server it
// starts on 127.0.0.1, node A publishing one channel message every 10 ms
// (100 msg/s); after 1 s the redis-server is stopped for the given
// outage and started again on the same port. It prints the messages sent,
// received by node B, lost, duplicated, and the time from Redis's return
// to B having received everything that was sent before the return.
//
//	go run ./bench/busoutage 2s      # or 8s, 30s
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/cluster/redis"
)

type counter struct {
	mu  sync.Mutex
	got map[int]int
}

func (c *counter) HandleMessage(e *cluster.Envelope) {
	var i int
	_ = json.Unmarshal(e.Payload, &i)
	c.mu.Lock()
	c.got[i]++
	c.mu.Unlock()
}
func (c *counter) NodeDown(string) {}

func startRedis(port string) *exec.Cmd {
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return cmd
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "redis-server did not start")
	os.Exit(1)
	return nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: busoutage OUTAGE   (e.g. 2s, 8s)")
		os.Exit(2)
	}
	outage, err := time.ParseDuration(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	rs := startRedis(port)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	o := cluster.Options{Namespace: "outage", HeartbeatInterval: time.Second, HeartbeatTimeout: 3 * time.Second, Logger: quiet}
	a := cluster.NewNode(redis.New(redis.Options{Addr: "127.0.0.1:" + port, Logger: quiet}), o)
	b := cluster.NewNode(redis.New(redis.Options{Addr: "127.0.0.1:" + port, Logger: quiet}), o)
	cb := &counter{got: map[int]int{}}
	if err := a.Start(context.Background(), &counter{got: map[int]int{}}); err != nil {
		panic(err)
	}
	if err := b.Start(context.Background(), cb); err != nil {
		panic(err)
	}
	b.Subscribe("/api/socket", "/bench")

	sent := 0
	tick := time.NewTicker(10 * time.Millisecond)
	start := time.Now()
	var back time.Time
	stopped := false
	for range tick.C {
		p, _ := json.Marshal(sent)
		a.Publish(&cluster.Envelope{Type: cluster.UserMessage, EndpointName: "/api/socket", ChannelName: "/bench",
			FromUserID: "u", Event: "m", Payload: p, Recipients: cluster.AllUsers()})
		sent++
		el := time.Since(start)
		if !stopped && el >= time.Second {
			rs.Process.Kill()
			rs.Wait()
			stopped = true
		}
		if stopped && back.IsZero() && el >= time.Second+outage {
			rs = startRedis(port)
			back = time.Now()
		}
		if !back.IsZero() && time.Since(back) >= 5*time.Second {
			break
		}
	}
	tick.Stop()
	time.Sleep(500 * time.Millisecond)
	cb.mu.Lock()
	recv, dup := 0, 0
	var lost []int
	for i := 0; i < sent; i++ {
		if c := cb.got[i]; c > 0 {
			recv++
			dup += c - 1
		} else if len(lost) < 10 {
			lost = append(lost, i)
		}
	}
	cb.mu.Unlock()
	sa := a.Stats()
	// lost messages are numbered from 0 at 100/s: the outage starts at
	// number 100
	fmt.Printf("outage=%v sent=%d received=%d lost=%d duplicates=%d dropped_counted=%d buffered_at_end=%d first_lost=%v\n",
		outage, sent, recv, sent-recv, dup, sa.Dropped, sa.Buffered, lost)
	a.Close()
	b.Close()
	rs.Process.Kill()
	rs.Wait()
}
