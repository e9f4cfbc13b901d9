package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// maxBatch bounds how many queued messages one backend call carries.
const maxBatch = 512

type outMessage struct {
	topic  string
	data   []byte
	queued time.Time
	seq    uint64
}

// size is what a message counts against PublishBuffer.
func (m *outMessage) size() int { return len(m.topic) + len(m.data) + 64 }

// attemptTimeout bounds one backend call.
const attemptTimeout = 5 * time.Second

// maxBackoff bounds the wait between attempts while the bus fails.
const maxBackoff = 500 * time.Millisecond

// Publish sends e to the other nodes. It fills Protocol, Version, a new
// MessageID, SourceNodeID (this node) and Timestamp (now, when zero), and
// normalises EndpointName with EndpointName, so the caller may pass the
// endpoint's pattern ("/api/socket") or its name ("api/socket"). The topic
// is ChannelTopic of EndpointName and ChannelName (HeartbeatTopic for a
// NODE_HEARTBEAT).
//
// Publish never blocks: e is encoded on the caller's goroutine (an envelope
// that cannot be encoded is logged and dropped) and appended to the node's
// one ordered outbound buffer. A single sender drains it in order, batching
// what is there; while the bus is unreachable the messages stay, and when
// they exceed PublishBuffer bytes the oldest are dropped (counted in
// Dropped and Overflowed, logged at most once a second). The caller keeps
// ownership of e.
func (n *Node) Publish(e *Envelope) {
	out := *e
	out.Protocol, out.Version = Protocol, Version
	out.MessageID = NewMessageID()
	out.SourceNodeID = n.o.NodeID
	now := time.Now()
	if out.Timestamp == 0 {
		out.Timestamp = now.UnixMilli()
	}
	topic := n.hbTopic
	if out.Type == NodeHeartbeat {
		out.EndpointName, out.ChannelName = HeartbeatName, HeartbeatName
	} else {
		out.EndpointName = EndpointName(out.EndpointName)
		topic = ChannelTopic(n.o.KeyPrefix, n.o.Namespace, out.EndpointName, out.ChannelName)
	}
	data, err := Encode(&out)
	if err != nil {
		n.dropped.Add(1)
		n.log.Error("cluster: dropped a message that cannot be encoded", "type", out.Type, "channel", out.ChannelName, "err", err)
		return
	}
	n.obMu.Lock()
	if n.obDone {
		n.obMu.Unlock()
		n.dropped.Add(1)
		return
	}
	m := outMessage{topic: topic, data: data, queued: now, seq: n.obSeq}
	n.obSeq++
	n.ob = append(n.ob, m)
	n.obBytes += m.size()
	over := 0
	for n.obBytes > n.o.PublishBuffer && len(n.ob) > 0 {
		n.obBytes -= n.ob[0].size()
		n.ob[0] = outMessage{}
		n.ob = n.ob[1:]
		n.obHead++
		over++
	}
	if over > 0 {
		n.obLost = true
	}
	n.obMu.Unlock()
	if over > 0 {
		n.dropped.Add(uint64(over))
		n.overflowed.Add(uint64(over))
		n.dropLog.log(n.log, "cluster: outbound buffer full; oldest messages dropped", errBufferFull)
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

var errBufferFull = errors.New("PublishBuffer exceeded while the bus is slow or unreachable")

// peek copies up to maxBatch messages from the head of the buffer.
func (n *Node) peek(batch []outMessage) []outMessage {
	n.obMu.Lock()
	defer n.obMu.Unlock()
	return append(batch[:0], n.ob[:min(len(n.ob), maxBatch)]...)
}

// commit removes the messages up to and including seq last from the head
// (those the buffer still holds: overflow may have dropped some meanwhile)
// and reports whether a resync for dropped messages is due.
func (n *Node) commit(last uint64) (lost bool) {
	n.obMu.Lock()
	defer n.obMu.Unlock()
	if last >= n.obHead {
		k := min(int(last-n.obHead+1), len(n.ob))
		for i := range k {
			n.obBytes -= n.ob[i].size()
			n.ob[i] = outMessage{}
		}
		n.ob = n.ob[k:]
		n.obHead += uint64(k)
		if len(n.ob) == 0 {
			n.ob = nil // let the backing array go
		}
	}
	lost, n.obLost = n.obLost, false
	return lost
}

// holding reports how long the sender must still wait before publishing:
// while a ConnectionNotifier backend's receiving side is down, and for
// reconnectGrace after it returns.
func (n *Node) holding(now time.Time) (bool, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.subOK {
		return true, 0
	}
	if d := n.holdUntil.Sub(now); d > 0 {
		return true, d
	}
	return false, 0
}

// sender drains the buffer in order until Close, then flushes for up to
// FlushTimeout.
func (n *Node) sender() {
	defer n.senderWG.Done()
	sendCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batch := make([]outMessage, 0, maxBatch)
	backoff := 20 * time.Millisecond
loop:
	for {
		batch = n.peek(batch)
		var wait <-chan time.Time
		var t *time.Timer
		if len(batch) > 0 {
			hold, d := n.holding(time.Now())
			switch {
			case hold && d == 0:
				// wait for the notifier (wake)
			case hold:
				t = time.NewTimer(d)
				wait = t.C
			default:
				sent := n.attempt(sendCtx, batch)
				if sent > 0 && n.commit(batch[sent-1].seq) {
					n.log.Warn("cluster: outbound messages were dropped; resynchronising membership")
					n.requestResync(Resync{Reason: ResyncDropped, Sweep: true})
				}
				if sent == len(batch) {
					backoff = 20 * time.Millisecond
					continue
				}
				t = time.NewTimer(backoff)
				wait = t.C
				backoff = min(backoff*2, maxBackoff)
			}
		}
		select {
		case <-n.wake:
		case <-wait:
		case <-n.stop:
			if t != nil {
				t.Stop()
			}
			break loop
		}
		if t != nil {
			t.Stop()
		}
	}
	// Flush what is buffered, bounded by FlushTimeout: once it expires
	// every attempt fails at once and the rest is dropped, counted.
	flushTimer := time.AfterFunc(n.o.FlushTimeout, cancel)
	defer flushTimer.Stop()
	for sendCtx.Err() == nil {
		batch = n.peek(batch)
		if len(batch) == 0 {
			break
		}
		if sent := n.attempt(sendCtx, batch); sent > 0 {
			n.commit(batch[sent-1].seq)
		} else {
			select {
			case <-sendCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	n.obMu.Lock()
	n.obDone = true
	left := len(n.ob)
	n.ob, n.obBytes = nil, 0
	n.obMu.Unlock()
	n.dropped.Add(uint64(left))
}

// attempt makes one backend call for batch and returns how many messages
// from its start the backend accepted. A failure in the middle of a batch
// sends the rest again (at-least-once while the bus fails).
func (n *Node) attempt(ctx context.Context, batch []outMessage) int {
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	var err error
	sent := 0
	if bp, ok := n.ps.(BatchPublisher); ok && len(batch) > 1 {
		msgs := make([]Message, len(batch))
		for i, m := range batch {
			msgs[i] = Message{Topic: m.topic, Data: m.data}
		}
		err = bp.PublishBatch(actx, msgs)
		var be *BatchError
		if err == nil {
			sent = len(batch)
		} else if errors.As(err, &be) && len(be.Errs) == len(batch) {
			for sent < len(batch) && be.Errs[sent] == nil {
				sent++
			}
		}
	} else {
		for _, m := range batch {
			if err = n.ps.Publish(actx, m.topic, m.data); err != nil {
				break
			}
			sent++
		}
	}
	now := time.Now()
	if sent > 0 {
		n.published.Add(uint64(sent))
		n.lastLatency.Store(int64(now.Sub(batch[sent-1].queued)))
	}
	if err == nil {
		n.setPubOK(true)
		return sent
	}
	n.publishFailures.Add(uint64(len(batch) - sent))
	if ctx.Err() == nil {
		n.failLog.log(n.log, "cluster: publish failed; keeping the messages and retrying", err)
		n.setPubOK(false)
	}
	return sent
}

// rateLog logs at most once a second, counting what it held back.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLog) log(l *slog.Logger, msg string, err error) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	l.Warn(msg, "err", err, "suppressed_since_last", n)
}
