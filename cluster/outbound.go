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
}

// Publish sends e to the other nodes. It fills Protocol, Version, a new
// MessageID, SourceNodeID (this node) and Timestamp (now, when zero), and
// normalises EndpointName with EndpointName, so the caller may pass the
// endpoint's pattern ("/api/socket") or its name ("api/socket"). The topic
// is ChannelTopic of EndpointName and ChannelName (HeartbeatTopic for a
// NODE_HEARTBEAT).
//
// Publish never blocks: e is encoded on the caller's goroutine (an envelope
// that cannot be encoded is logged and dropped) and put on the node's one
// ordered outbound queue. A single sender drains it in order, batching
// what is queued; while the backend fails it retries with back-off, and a
// message not accepted within PublishRetry of being queued is dropped; a
// full queue drops at once. Drops are counted (Stats) and logged at most
// once a second. The caller keeps ownership of e.
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
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		n.dropped.Add(1)
		return
	}
	select {
	case n.queue <- outMessage{topic: topic, data: data, queued: now}:
	default:
		n.dropped.Add(1)
		n.queueFull.Add(1)
		n.dropLog.log(n.log, "cluster: outbound queue full; message dropped", errQueueFull)
	}
}

var errQueueFull = errors.New("outbound queue full")

// sender drains the queue in order until Close, then flushes for up to
// FlushTimeout.
func (n *Node) sender() {
	defer n.senderWG.Done()
	sendCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batch := make([]outMessage, 0, maxBatch)
	var left []outMessage
loop:
	for {
		select {
		case m := <-n.queue:
			batch = append(batch[:0], m)
		case <-n.stop:
			break loop
		}
		n.fill(&batch)
		if left = n.send(sendCtx, batch, n.stop); left != nil {
			break loop
		}
	}
	// Flush what is left and queued, bounded by FlushTimeout: once it
	// expires every attempt fails at once and the rest is dropped, counted.
	flushTimer := time.AfterFunc(n.o.FlushTimeout, cancel)
	defer flushTimer.Stop()
	batch = append(batch[:0], left...)
	for {
		n.fill(&batch)
		if len(batch) == 0 {
			return
		}
		n.send(sendCtx, batch, nil)
		batch = batch[:0]
	}
}

// fill appends to batch what is queued now, without waiting.
func (n *Node) fill(batch *[]outMessage) {
	for len(*batch) < maxBatch {
		select {
		case m := <-n.queue:
			*batch = append(*batch, m)
		default:
			return
		}
	}
}

// send publishes batch in order, retrying failed messages with back-off
// until each one's PublishRetry window is over or ctx ends (then they are
// dropped, counted). If stop is closed during a back-off wait, send returns
// the messages still pending, for the caller to flush.
func (n *Node) send(ctx context.Context, batch []outMessage, stop <-chan struct{}) []outMessage {
	pending := batch
	backoff := 20 * time.Millisecond
	for len(pending) > 0 {
		failed := n.attempt(ctx, pending)
		if len(failed) == 0 {
			return nil
		}
		// Drop what has waited PublishRetry; keep the order of the rest.
		now := time.Now()
		keep := failed[:0]
		for _, m := range failed {
			if now.Sub(m.queued) >= n.o.PublishRetry || ctx.Err() != nil {
				n.dropped.Add(1)
				n.dropLog.log(n.log, "cluster: message dropped after PublishRetry", errRetryOver)
				continue
			}
			keep = append(keep, m)
		}
		pending = keep
		if len(pending) == 0 {
			return nil
		}
		wait := min(backoff, pending[0].queued.Add(n.o.PublishRetry).Sub(now))
		backoff = min(backoff*2, time.Second)
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		case <-stop:
			t.Stop()
			return pending
		}
	}
	return nil
}

var errRetryOver = errors.New("not accepted within PublishRetry")

// attempt makes one backend call for pending and returns the failed
// messages, in order.
func (n *Node) attempt(ctx context.Context, pending []outMessage) []outMessage {
	actx, cancel := context.WithTimeout(ctx, attemptTimeout(n.o.PublishRetry))
	defer cancel()
	var err error
	var perMsg []error
	if bp, ok := n.ps.(BatchPublisher); ok && len(pending) > 1 {
		msgs := make([]Message, len(pending))
		for i, m := range pending {
			msgs[i] = Message{Topic: m.topic, Data: m.data}
		}
		err = bp.PublishBatch(actx, msgs)
		var be *BatchError
		if errors.As(err, &be) && len(be.Errs) == len(pending) {
			perMsg = be.Errs
		}
	} else {
		perMsg = make([]error, len(pending))
		for i, m := range pending {
			if perMsg[i] = n.ps.Publish(actx, m.topic, m.data); perMsg[i] != nil {
				err = perMsg[i]
				// Keep per-topic order: stop at the first failure; the rest
				// count as failed too (retried in order).
				for j := i + 1; j < len(pending); j++ {
					perMsg[j] = err
				}
				break
			}
		}
	}
	now := time.Now()
	if err == nil {
		n.published.Add(uint64(len(pending)))
		n.lastLatency.Store(int64(now.Sub(pending[len(pending)-1].queued)))
		return nil
	}
	n.failLog.log(n.log, "cluster: publish failed; retrying", err)
	var failed []outMessage
	for i, m := range pending {
		if perMsg != nil && perMsg[i] == nil {
			n.published.Add(1)
			n.lastLatency.Store(int64(now.Sub(m.queued)))
			continue
		}
		n.publishFailures.Add(1)
		failed = append(failed, m)
	}
	return failed
}

// attemptTimeout bounds one backend call.
func attemptTimeout(retry time.Duration) time.Duration {
	return max(min(retry, 5*time.Second), 100*time.Millisecond)
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
