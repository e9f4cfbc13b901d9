package scenario

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pondsocket/pondsocket/bench/client"
)

// apiPublisher is the fan-out publisher of --publish api: it POSTs each
// measured message to the standalone server's /api/broadcast instead of
// writing a BROADCAST on the publisher's WebSocket. It keeps the same
// window as the WebSocket publisher: message n is sent only once the
// parent's credit allows n. Its goroutines never touch a loop's state;
// they count on the publisher loop's atomic counters.
type apiPublisher struct {
	w       *worker
	ls      *loopState // the publisher's loop: sent and refused are counted there
	url     string
	key     string
	channel string
	path    string // the endpoint: the first target's path
	http    *http.Client

	mu    sync.Mutex // seq, allow and the phase check that guards a send
	seq   int64      // messages taken
	allow int64      // credit

	wake chan struct{} // a poster may take more (capacity 1)
	stop chan struct{}
	wg   sync.WaitGroup

	errMu  sync.Mutex
	errors map[string]int
}

func newAPIPublisher(w *worker, ls *loopState, tg *client.Target, channel string) *apiPublisher {
	scheme := "http"
	if tg.URL.Scheme == "wss" || tg.URL.Scheme == "https" {
		scheme = "https"
	}
	conns := max(1, w.spec.APIConns)
	addr := tg.Addr
	if w.spec.APIAddr != "" {
		addr = w.spec.APIAddr
	}
	return &apiPublisher{
		w:       w,
		ls:      ls,
		url:     scheme + "://" + addr + "/api/broadcast",
		key:     w.spec.APIKey,
		channel: channel,
		path:    tg.URL.Path,
		http: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true},
		},
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		errors: map[string]int{},
	}
}

// start runs the posters; the measured phase has begun.
func (p *apiPublisher) start() {
	for i := 0; i < max(1, p.w.spec.APIConns); i++ {
		p.wg.Add(1)
		go p.post()
	}
	p.signal()
}

// credit raises the window to allow messages.
func (p *apiPublisher) credit(allow int64) {
	p.mu.Lock()
	if allow > p.allow {
		p.allow = allow
	}
	p.mu.Unlock()
	p.signal()
}

func (p *apiPublisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// barrier returns once no poster is between its phase check and counting
// its message as sent (see the worker's "stop").
func (p *apiPublisher) barrier() { p.mu.Lock(); p.mu.Unlock() }

// close stops the posters and waits for them (each request is bounded by
// the client's timeout).
func (p *apiPublisher) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
	p.http.CloseIdleConnections()
}

// take returns the next sequence number the window allows, counted as
// sent, or 0 when none is allowed now; done says no more will ever be.
func (p *apiPublisher) take() (seq int64, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w.phase.Load() != phaseRun || p.seq >= int64(p.w.spec.Messages) {
		return 0, true
	}
	if p.seq >= p.allow {
		return 0, false
	}
	p.seq++
	p.ls.sent.Add(1)
	return p.seq, false
}

func (p *apiPublisher) post() {
	defer p.wg.Done()
	var body []byte
	for {
		seq, done := p.take()
		if done {
			return
		}
		if seq == 0 {
			select {
			case <-p.wake:
				continue
			case <-p.stop:
				return
			}
		}
		p.signal() // another poster may take the next one
		body = p.appendBody(body[:0], seq, time.Now().UnixNano())
		if err := p.send(body); err != nil {
			p.ls.refused.Add(1)
			p.countError(err.Error())
		}
	}
}

// appendBody appends the request: the same payload the WebSocket
// publisher sends (ts, seq, src 0, padding), so the receivers' latency and
// loss accounting work unchanged.
func (p *apiPublisher) appendBody(dst []byte, seq, ts int64) []byte {
	dst = append(dst, `{"endpoint":`...)
	dst = strconv.AppendQuote(dst, p.path)
	dst = append(dst, `,"channel":`...)
	dst = strconv.AppendQuote(dst, p.channel)
	dst = append(dst, `,"event":`...)
	dst = strconv.AppendQuote(dst, p.w.spec.Event)
	dst = append(dst, `,"payload":`...)
	dst = appendPayload(dst, p.w.spec.PayloadSize, ts, seq, p.w.pub.id)
	return append(dst, '}')
}

func (p *apiPublisher) send(body []byte) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "apikey "+p.key)
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("server API: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server API %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

func (p *apiPublisher) countError(class string) {
	if len(class) > 100 {
		class = class[:100]
	}
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if _, ok := p.errors[class]; !ok && len(p.errors) >= 32 {
		class = "other"
	}
	p.errors[class]++
}

func (p *apiPublisher) errorCounts() map[string]int {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	out := make(map[string]int, len(p.errors))
	for k, v := range p.errors {
		out[k] = v
	}
	return out
}
