package attack

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pondsocket/pondsocket/bench/client"
)

// Bystander is what the well-behaved client saw during the attack: one echo
// request every interval, each waiting for its reply.
type Bystander struct {
	Sent    int `json:"sent"`
	Replies int `json:"replies"`
	// Failures counts requests without a reply (timeout, error, closed
	// connection) and failed reconnections.
	Failures     int     `json:"failures"`
	FirstFailure string  `json:"first_failure,omitempty"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	Maxms        float64 `json:"max_ms"`
}

// bystander runs the well-behaved client.
type bystander struct {
	target  *client.Target
	channel string
	event   string
	every   time.Duration
	timeout time.Duration // bound on one reply

	mu   sync.Mutex
	rtts []time.Duration
	res  Bystander
}

// connect opens the bystander's connection and joins its own room.
func (b *bystander) connect(ctx context.Context) (*Conn, error) {
	c, err := dialWS(ctx, b.target, url.Values{"username": {"bystander"}}, 5*time.Second)
	if err != nil {
		return nil, err
	}
	dl := time.Now().Add(5 * time.Second)
	if err := c.waitConnect(dl); err != nil {
		c.Close()
		return nil, fmt.Errorf("waiting for CONNECT: %w", err)
	}
	if err := c.join(b.channel, "bystander-join", map[string]any{"presence": false}, dl); err != nil {
		c.Close()
		return nil, fmt.Errorf("join %s: %w", b.channel, err)
	}
	return c, nil
}

func (b *bystander) fail(why string) {
	b.mu.Lock()
	b.res.Failures++
	if b.res.FirstFailure == "" {
		b.res.FirstFailure = why
	}
	b.mu.Unlock()
}

// run sends echo requests on c until stop is closed; a broken connection is
// replaced. It returns when the last request is answered or has failed.
func (b *bystander) run(ctx context.Context, c *Conn, stop <-chan struct{}) {
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	t := time.NewTicker(b.every)
	defer t.Stop()
	for seq := 1; ; seq++ {
		if seq > 1 {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if c == nil {
			var err error
			if c, err = b.connect(ctx); err != nil {
				b.fail("reconnect: " + err.Error())
				c = nil
				continue
			}
		}
		if err := b.echo(c, seq); err != nil {
			b.fail(fmt.Sprintf("echo %d: %s", seq, err))
			c.Close()
			c = nil
		}
	}
}

func (b *bystander) echo(c *Conn, seq int) error {
	id := "by-" + strconv.Itoa(seq)
	start := time.Now()
	dl := start.Add(b.timeout)
	b.mu.Lock()
	b.res.Sent++
	b.mu.Unlock()
	if err := c.Send("BROADCAST", b.channel, b.event, id, map[string]any{"seq": seq}, dl); err != nil {
		return err
	}
	for {
		m, err := c.Next(dl)
		if err != nil {
			return fmt.Errorf("%s (%w)", closeDesc(c, err), err)
		}
		if m.RequestID != id {
			continue
		}
		if m.Action == "ERROR" {
			return fmt.Errorf("server error %s", errorText(m.Payload))
		}
		rtt := time.Since(start)
		b.mu.Lock()
		b.res.Replies++
		b.rtts = append(b.rtts, rtt)
		b.mu.Unlock()
		return nil
	}
}

// sent is the number of requests so far.
func (b *bystander) sent() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.res.Sent
}

// result summarises the round trips.
func (b *bystander) result() Bystander {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.res
	if len(b.rtts) > 0 {
		s := slices.Clone(b.rtts)
		slices.Sort(s)
		q := func(p float64) float64 {
			i := int(p * float64(len(s)-1))
			return ms(s[i])
		}
		r.P50ms, r.P99ms, r.Maxms = q(0.5), q(0.99), ms(s[len(s)-1])
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
