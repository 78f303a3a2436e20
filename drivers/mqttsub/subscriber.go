// Package mqttsub is envgate's MQTT source: it subscribes to a broker (LoRaWAN network
// servers, ESP32 nodes, smart noise meters, data loggers), maps each topic to a site,
// device and quantity, decodes JSON, plain-number and line-protocol payloads into
// readings, and acknowledges a message to the broker only once its readings are
// durable.
//
// Delivery is at least once, end to end, for QoS 1 messages. The client keeps a
// persistent session (MQTT 3.1.1, clean session off, stable client ID, QoS 1), so the
// broker queues messages while the gateway is away, and it sends the PUBACK of a
// message only after the pipeline has fsynced its readings (reading.Batch.Durable).
// Whatever was not acknowledged when a connection ends is delivered again on the next
// one, so a reading can arrive twice after a crash or a lost connection. Readings
// stamped from the payload then overwrite the same InfluxDB point; readings stamped
// with the arrival time appear twice.
//
// A message a publisher sent at QoS 0 reaches the subscriber at QoS 0 (the broker
// delivers at the lower of the two QoS): it has no PUBACK, the broker never delivers
// it again and does not queue it while the gateway is away, so it is lost if the
// gateway stops before its readings are durable, or if it arrives while the subscriber
// holds too much (Stats.Lost).
//
// Decoding is pure (Decode) and separate from the connection (Subscriber.Run).
package mqttsub

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/envgate/envgate/gateway/reading"
)

// Tuning of the client.
const (
	// maxHeld and maxHeldBytes bound what the subscriber holds: messages received and not
	// yet acknowledged or given up, whether in the inbox or in the pipeline. The bytes are
	// payload bytes (of an oversize message, its stub): paho keeps no copy of a received
	// message (sessionStore), so these are all the payloads a Run holds. The broker's in-flight window (mosquitto's
	// max_inflight_messages, default 20) normally keeps far inside these, but mosquitto
	// 2.0.11 ignores it while it drains a session's queue: every PUBACK releases up to
	// a window's worth more, and a backlog of 20 000 messages arrived almost at once
	// (bench/README.md). A message beyond the bounds is dropped without PUBACK and the
	// connection is closed once the messages before it are acknowledged, so that the
	// broker delivers the dropped ones again (see Subscriber.Run).
	maxHeld      = 8192
	maxHeldBytes = 16 << 20
	// forcedReconnectGap is the least time between two reconnects the subscriber forces;
	// paho's own back-off (after a connection lost within seconds of the previous one: 1s,
	// doubling up to max_reconnect) comes on top, so a broker that keeps overfilling the
	// subscriber sees a reconnect every max_reconnect at most.
	forcedReconnectGap = 5 * time.Second
	// ackFlush is the pause between the last PUBACK and a forced reconnect. The PUBACKs
	// are written by then (ackReady writes them itself); the pause gives the broker
	// time to take them before the connection ends.
	ackFlush = 100 * time.Millisecond
	// drainLimit bounds how long a forced reconnect waits for the messages accepted
	// before the first drop to be acknowledged (a failing disk may hold them for long);
	// until the reconnect, paho keeps every dropped QoS 1 message in memory.
	drainLimit = 30 * time.Second
	// maxGroup and maxGroupReadings bound the messages, and their readings, that Run
	// hands to the pipeline in one batch (see take).
	maxGroup         = 256
	maxGroupReadings = 4096
	// stubPayload is how much of an oversize payload is kept for the dead-letter file.
	stubPayload = 256
	// readBuffer buffers the reads of the broker connection: paho reads each packet
	// with several small reads (type byte, length bytes, body), one syscall each
	// without it. 16 KiB is a TLS record's largest plaintext (RFC 8446 §5.1).
	readBuffer = 16 << 10
	// WriteTimeout: a half-open cellular TCP connection otherwise blocks writes (and
	// with them PUBACKs and pings) forever (docs/engineering-notes.md §6).
	writeTimeout = 10 * time.Second
	// connectTimeout bounds dial, TLS and CONNACK of one attempt.
	connectTimeout = 10 * time.Second
	// connectRetry is the pause between first-connection attempts (paho retries those
	// at a fixed interval; the back-off up to MaxReconnect applies after a loss).
	connectRetry = 5 * time.Second
	// subscribeTimeout bounds the wait for SUBACK; subscribeRetry is the first pause
	// before subscribing again after a failure, doubled up to MaxReconnect.
	subscribeTimeout = 30 * time.Second
	subscribeRetry   = time.Second
	// ackGrace: on shutdown Run waits this long for the pipeline to make the batches it
	// already took durable, so their PUBACKs go out and the broker does not deliver
	// them again after the restart. It must fit in the unit's stop timeout.
	ackGrace = 2 * time.Second
	// disconnectQuiesce (ms) lets the final PUBACKs and DISCONNECT reach the broker.
	disconnectQuiesce = 250
	// logEvery throttles per-message warnings (malformed, lost).
	logEvery = time.Minute
)

// limits are a Subscriber's bounds and pauses. New sets them from the constants above;
// tests shorten them.
type limits struct {
	held             int
	heldBytes        int64
	group            int // messages per batch at most (maxGroup)
	forcedGap, drain time.Duration
	subscribeTimeout time.Duration
}

var defaultLimits = limits{
	held: maxHeld, heldBytes: maxHeldBytes, group: maxGroup,
	forcedGap: forcedReconnectGap, drain: drainLimit,
	subscribeTimeout: subscribeTimeout,
}

// Subscriber is one MQTT source. Create it with New; Run connects and consumes.
type Subscriber struct {
	cfg     Config
	broker  *url.URL
	plans   []*plan
	log     *slog.Logger
	lim     limits
	running atomic.Bool
	dl      deadLetter // malformed messages; written by Run's goroutine only

	// held and heldBytes count what the current Run holds (Stats.Held, HeldBytes).
	held, heldBytes atomic.Int64

	mu    sync.Mutex // guards the counters below
	stats Stats
	// errorsByKind is Stats.ErrorsByKind, copied by Stats().
	errorsByKind map[string]uint64
}

// Stats are a Subscriber's counters since New; Run can be called again and they go on.
type Stats struct {
	Messages     uint64 // messages received (malformed ones included), counted once each
	Bytes        uint64 // their payload bytes
	Readings     uint64 // readings decoded and handed to the pipeline
	DeadLettered uint64 // malformed messages: acknowledged, counted, written to DeadLetter if set
	// DeadLetterDropped counts dead-letter lines deleted when the rotated files ran out
	// (gateway/deadletter): the messages were counted in DeadLettered, their text is gone.
	DeadLetterDropped uint64
	ErrorsByKind      map[string]uint64 // malformed messages by DecodeError kind
	// Dropped counts QoS 1 messages dropped without PUBACK because the subscriber held
	// too much; each episode ends with a forced reconnect, after which the broker
	// delivers them again.
	Dropped          uint64
	Lost             uint64 // QoS 0 messages dropped because the subscriber held too much: gone for good
	ForcedReconnects uint64 // connections the subscriber closed so that the broker delivers dropped or refused messages again
	// NotDurable counts QoS 1 messages left unacknowledged because the pipeline refused
	// them (the disk failed), or because an earlier message of their connection was
	// refused; the broker delivers them again after a forced reconnect.
	NotDurable uint64
	Acked      uint64 // messages acknowledged (PUBACK for QoS 1)
	InFlight   int    // messages received and not yet acknowledged or given up, out of the inbox
	Held       int64  // messages held: in the inbox or in flight
	HeldBytes  int64  // their payload bytes (see maxHeldBytes)
	Connected  bool
	Subscribed bool   // the broker confirmed every subscription (or kept them in the session)
	Reconnects uint64 // successful connections after the first of each Run
}

// Name returns the source's name (Config.Name).
func (s *Subscriber) Name() string { return s.cfg.Name }

// Stats returns a snapshot of the counters. It is safe to call from any goroutine.
func (s *Subscriber) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ErrorsByKind = maps.Clone(s.errorsByKind)
	st.Held, st.HeldBytes = s.held.Load(), s.heldBytes.Load()
	st.DeadLetterDropped = s.dl.dropped()
	return st
}

func (s *Subscriber) update(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Run connects to the broker and consumes messages until ctx is done, then returns nil.
// It never closes out. Connection problems are not errors: the client keeps retrying
// (also when the broker is unreachable at start) with back-off up to MaxReconnect, and
// logs each state change once. A subscription the broker refuses (SUBACK 0x80) or does
// not confirm in time is retried while connected, with the same back-off. Run returns
// an error only if called while running; it may be called again after it returned
// (same client ID, so same broker session).
//
// Each good message becomes one reading.Batch on out, and its PUBACK is sent only when
// the pipeline calls the batch's Durable(nil). PUBACKs go in the order the messages
// arrived (MQTT 3.1.1 §4.6): a batch made durable before an earlier one waits for it;
// both are normally covered by the same fsync.
//
// The batch of a QoS 1 message is redeliverable (reading.Batch.Redeliverable): the
// broker keeps the message until it is acknowledged. While the disk fails the pipeline
// refuses such a batch and keeps nothing of it (Durable reports an error); the message
// is then left unacknowledged, and so is every later QoS 1 message of the same
// connection (acknowledged messages stay a prefix of the arrival order), and the
// subscriber forces a reconnect exactly as when it is full (below), after which the
// broker delivers them all again. The subscriber holds nothing for them meanwhile; the
// broker does. A QoS 0 message has no other copy: its batch is not redeliverable, and
// the pipeline holds it in memory while the disk fails.
//
// A malformed message (undecodable, oversized, no matching subscription, implausible
// value) is acknowledged at once (after the messages before it), counted by kind,
// logged (throttled) and appended to Config.DeadLetter as one line:
//
//	<RFC3339 arrival> topic=<topic> reason=<kind>: <detail>\t<payload as %q, first 1 KiB>
//
// of an oversize message only the first 256 bytes are kept and written.
//
// The subscriber holds at most 8192 messages and 16 MiB of payload that are not yet
// acknowledged (the handler that paho calls must not block). A QoS 1 message beyond
// that is dropped without PUBACK, and so is every later one on the same connection;
// once the messages accepted before the first drop are acknowledged (or after 30s),
// the subscriber closes the connection, at most once per 5s (paho's reconnect back-off
// comes on top), and the broker delivers everything unacknowledged again on the next
// one (MQTT 3.1.1 §4.4 resends only on a new connection). Each episode is logged once
// and counted (Dropped or NotDurable, ForcedReconnects). A
// QoS 0 message beyond the bounds is lost (Lost). Messages are also left
// unacknowledged, for the broker to deliver again, when Run stops before the pipeline
// made them durable within a short grace period.
func (s *Subscriber) Run(ctx context.Context, out chan<- reading.Batch) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("mqtt source %q: Run called twice", s.cfg.Name)
	}
	defer s.running.Store(false)

	r := s.newRunner()
	client := mqtt.NewClient(r.options())
	// With ConnectRetry the token completes only once connected (or on Disconnect);
	// the handlers report progress, so Run does not wait for it.
	client.Connect()

	r.loop(ctx, out)
	r.finish()
	r.stopped.Store(true)
	close(r.done)
	r.stopTimers()
	client.Disconnect(disconnectQuiesce)
	s.update(func(st *Stats) { st.Connected, st.Subscribed = false, false })
	if err := s.dl.release(); err != nil {
		r.log.Warn("close dead-letter file", "path", s.cfg.DeadLetter, "err", err)
	}
	r.log.Info("mqtt disconnected", "unacknowledged", len(r.queue)+len(r.stale))
	s.held.Store(0)
	s.heldBytes.Store(0)
	return nil
}

// loop consumes the inbox and the pipeline's answers until ctx is done.
func (r *runner) loop(ctx context.Context, out chan<- reading.Batch) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-r.inbox:
			r.take(ctx, a, out)
		case <-r.notify:
			r.ackReady()
		case <-r.forceC:
			r.forceC = nil
			r.maybeReconnect()
		}
	}
}

// arrived is a message as the paho handler queues it, with its arrival time.
type arrived struct {
	topic    string
	payload  []byte // the payload, or its first stubPayload bytes if oversize
	size     int    // the payload's length
	oversize bool   // longer than Config.MaxPayload: payload is a stub
	qos1     bool   // needs a PUBACK (QoS 0 has none)
	qos2     bool   // QoS 2 (paho's path): acknowledged with a PUBREC instead
	id       uint16 // its packet identifier, for the PUBACK
	cost     int64  // bytes counted in Subscriber.heldBytes
	gen      uint64 // the connection that delivered it
	at       time.Time
}

// runner is the state of one Run. Its plain fields are touched only by Run's
// goroutine; the atomics and the throttles by paho's goroutines too.
type runner struct {
	s      *Subscriber
	log    *slog.Logger
	inbox  chan arrived
	notify chan struct{} // poked (never blocking) by Durable callbacks and drops
	done   chan struct{} // closed when Run returns: stops subscribe retries

	// gen numbers the connections: dial increments it before the CONNECT, and paho
	// delivers a connection's last message before it dials the next.
	gen  atomic.Uint64
	conn atomic.Pointer[brokerConn] // the latest connection, for forced reconnects
	// dropGen is the connection on which a QoS 1 message was dropped or refused; every
	// later QoS 1 message on it is dropped too, so that the ones acknowledged on it are
	// a prefix. refusedGen is the latest connection on which the pipeline refused one.
	dropGen      atomic.Uint64
	refusedGen   atomic.Uint64
	episodeDrops atomic.Uint64 // messages dropped in the current episode, for the log
	// inboxAcks counts the messages in the inbox that need a PUBACK.
	inboxAcks atomic.Int64

	seq    uint64   // arrival number of the last entry
	curGen uint64   // the connection queue belongs to
	queue  []*entry // unresolved messages of the current connection in arrival order
	// stale are unresolved messages of earlier connections. Their PUBACKs are not sent
	// (paho drops acks of an earlier connection, and the broker delivers them again on
	// the new one), so they do not hold up the current connection's; they stay until
	// their readings are durable or they are given up.
	stale       []*entry
	ackable     int       // entries in queue that need a PUBACK
	pubacks     []byte    // PUBACK packets ackReady writes at once
	episode     uint64    // dropGen of the latest episode Run has seen
	episodeAt   time.Time // when Run noticed it
	drainedAt   time.Time // when its messages were all acknowledged; zero before
	forced      uint64    // the connection Run closed last
	nextForce   time.Time // no forced reconnect before this
	forceTimer  *time.Timer
	forceC      <-chan time.Time
	diskFailing bool                  // the last resolved batch was refused (log state changes)
	diskErr     atomic.Pointer[error] // the first refusal's error since the disk last worked, for the log
	dlFailing   bool                  // the dead-letter file could not be written

	sessionPresent atomic.Bool // from the CONNACK of the current connection
	subscribed     atomic.Bool // the broker's session holds our subscriptions
	subFailing     atomic.Bool // the last SUBSCRIBE failed (log state changes)
	stopped        atomic.Bool // Run has returned: late paho callbacks change nothing
	everConnected  atomic.Bool
	reconnLogged   atomic.Bool // "reconnecting" logged for the current outage
	failLogged     atomic.Bool // "connect failed" logged for the current outage

	malformedLog, lostLog throttle
}

func (s *Subscriber) newRunner() *runner {
	s.held.Store(0)
	s.heldBytes.Store(0)
	return &runner{
		s:      s,
		log:    s.log,
		inbox:  make(chan arrived, s.lim.held), // never full: held bounds it
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// options configures paho for at-least-once delivery (docs/engineering-notes.md §6).
func (r *runner) options() *mqtt.ClientOptions {
	cfg := r.s.cfg
	o := mqtt.NewClientOptions().
		AddBroker(r.s.broker.String()).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1, no silent fallback to 3.1
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true). // handler on the router goroutine, in order; it never blocks
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(min(connectRetry, cfg.MaxReconnect)).
		SetMaxReconnectInterval(cfg.MaxReconnect).
		// ResumeSubs stays off: paho would resend a stored SUBSCRIBE from resume(), which
		// races with the one onConnect sends on the same connection (the broker logs two
		// and resends retained messages twice). onConnect subscribes again instead
		// whenever the last SUBSCRIBE did not complete or the broker lost the session.
		SetResumeSubs(false).
		SetKeepAlive(cfg.KeepAlive).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		// One default handler and no per-filter routes, set before Connect: a
		// persistent session may deliver queued messages before SUBACK, and a message
		// matching overlapping filters must be queued once, not once per route.
		SetDefaultPublishHandler(r.onMessage).
		SetOnConnectHandler(r.onConnect).
		SetConnectionLostHandler(r.onConnectionLost).
		SetReconnectingHandler(r.onReconnecting).
		SetConnectionNotificationHandler(r.onNotification).
		// paho reports SessionPresent only for the first Connect (ConnectToken);
		// reconnects discard it, so the dialer reads it from the CONNACK itself.
		SetCustomOpenConnectionFn(r.dial).
		// In memory, as paho's default. No FileStore: it does not fsync and panics on I/O
		// errors; durability is the pipeline's buffer (docs/engineering-notes.md §6).
		SetStore(sessionStore{mqtt.NewMemoryStore()})
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS)
	}
	return o
}

// sessionStore is paho's MemoryStore except that it keeps no PUBLISH packet. paho
// puts every received QoS 1 PUBLISH in its store, deletes it when Message.Ack sends the
// PUBACK and discards what is left on a reconnect; the subscriber writes its PUBACKs
// itself (runner.writePubacks) and never calls Ack, so the store would keep each
// message until its packet identifier came round again. The subscriber publishes
// nothing, so every PUBLISH put here is a received one. A SUBSCRIBE is kept until
// its SUBACK, as MemoryStore keeps it.
type sessionStore struct{ *mqtt.MemoryStore }

func (s sessionStore) Put(key string, m packets.ControlPacket) {
	if _, ok := m.(*packets.PublishPacket); ok {
		return
	}
	s.MemoryStore.Put(key, m)
}

// newArrived takes what the subscriber keeps of a message: an oversize payload is
// replaced by its first stubPayload bytes, and nothing keeps a reference to paho's
// (paho keeps no copy, sessionStore), so only the stub is counted. The PUBACK is the
// subscriber's to write (see ackReady): paho's Message.Ack is never called.
func (r *runner) newArrived(m mqtt.Message) arrived {
	return r.arrival(r.gen.Load(), inboundPublish{topic: m.Topic(), payload: m.Payload(), qos: m.Qos(), id: m.MessageID()})
}

// arrival is newArrived of a message that connection gen delivered.
func (r *runner) arrival(gen uint64, m inboundPublish) arrived {
	p := m.payload
	a := arrived{topic: m.topic, payload: p, size: max(len(p), m.size), gen: gen, at: r.s.cfg.Now()}
	if m.qos > 0 {
		a.qos1, a.qos2, a.id = true, m.qos == 2, m.id
	}
	if a.size > r.s.cfg.MaxPayload {
		a.oversize = true
		a.payload = slices.Clone(p[:min(len(p), stubPayload)])
	}
	a.cost = int64(len(a.payload))
	return a
}

// onMessage runs on paho's router goroutine and must never block: blocking stalls
// keep-alive handling and can deadlock paho (docs/engineering-notes.md §6). A message beyond the
// subscriber's bounds is dropped (see Run).
func (r *runner) onMessage(_ mqtt.Client, m mqtt.Message) {
	if r.stopped.Load() {
		return // after Run: left unacknowledged, the broker delivers it again
	}
	r.accept(r.newArrived(m))
}

// onPublish takes a PUBLISH that brokerConn read for connection gen (inbound.go), on
// paho's reader goroutine, as onMessage does on paho's router goroutine.
func (r *runner) onPublish(gen uint64, m inboundPublish) {
	if r.stopped.Load() {
		return
	}
	r.accept(r.arrival(gen, m))
}

// accept queues a message in the inbox, or drops it when the subscriber holds too
// much; it never blocks.
func (r *runner) accept(a arrived) {
	if a.qos1 && a.gen != 0 && r.dropGen.Load() == a.gen {
		r.drop(a) // keep the acknowledged messages of this connection a prefix
		return
	}
	// One message is always admitted, however large (up to MaxPayload or an oversize
	// QoS 1 one): otherwise it could never be delivered.
	n, b := r.s.held.Add(1), r.s.heldBytes.Add(a.cost)
	if n > 1 && (n > int64(r.s.lim.held) || b > r.s.lim.heldBytes) {
		r.s.held.Add(-1)
		r.s.heldBytes.Add(-a.cost)
		r.drop(a)
		return
	}
	if a.qos1 {
		r.inboxAcks.Add(1)
	}
	select {
	case r.inbox <- a:
	default: // not reached: the inbox has room for every held message
		if a.qos1 {
			r.inboxAcks.Add(-1)
		}
		r.s.held.Add(-1)
		r.s.heldBytes.Add(-a.cost)
		r.drop(a)
	}
}

// drop counts a message the subscriber does not take. A QoS 1 one starts or continues
// an episode that Run ends with a forced reconnect; a QoS 0 one is lost.
func (r *runner) drop(a arrived) {
	if !a.qos1 {
		r.s.update(func(st *Stats) { st.Lost++ })
		if ok, n := r.lostLog.allow(); ok {
			r.log.Warn("mqtt subscriber full, qos 0 message lost", "topic", a.topic, "suppressed", n)
		}
		return
	}
	if a.gen == r.refusedGen.Load() {
		r.s.update(func(st *Stats) { st.NotDurable++ }) // behind a refused message
	} else {
		r.s.update(func(st *Stats) { st.Dropped++ })
	}
	r.episodeDrops.Add(1)
	if r.dropGen.Swap(a.gen) != a.gen {
		r.poke() // Run logs the episode and plans the reconnect
	}
}

func (r *runner) poke() {
	select {
	case r.notify <- struct{}{}:
	default: // a poke is already pending
	}
}

func (r *runner) onConnect(c mqtt.Client) {
	if r.stopped.Load() {
		return
	}
	gen := r.gen.Load()
	present := r.sessionPresent.Load()
	again := r.everConnected.Swap(true)
	r.reconnLogged.Store(false)
	r.failLogged.Store(false)
	r.s.update(func(st *Stats) {
		st.Connected = true
		if again {
			st.Reconnects++
		}
	})
	// Subscribe on the first connection of each Run even if the broker kept a session
	// (the configured filters may have changed), and whenever the broker lost it.
	if !present {
		r.subscribed.Store(false)
	}
	resubscribe := !r.subscribed.Load()
	r.s.update(func(st *Stats) { st.Subscribed = !resubscribe })
	r.log.Info("mqtt connected", "broker", r.s.broker.String(), "session_present", present, "subscribe", resubscribe)
	if resubscribe {
		r.subscribe(c, gen)
	}
}

// subscribe runs in the connect handler's goroutine (paho starts one per call), so
// waiting for SUBACK and between attempts is fine. It subscribes until the broker
// confirms every filter, with back-off, while the connection gen is up and Run runs.
func (r *runner) subscribe(c mqtt.Client, gen uint64) {
	delay := min(subscribeRetry, r.s.cfg.MaxReconnect)
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		err := r.trySubscribe(c)
		if r.stopped.Load() || r.gen.Load() != gen {
			return // the next connection subscribes if it must
		}
		r.subscribed.Store(err == nil)
		r.s.update(func(st *Stats) { st.Subscribed = err == nil })
		if err == nil {
			if r.subFailing.Swap(false) {
				r.log.Info("mqtt subscribed")
			}
			return
		}
		if !r.subFailing.Swap(true) {
			r.log.Warn("mqtt subscribe failed, retrying while connected", "err", err, "retry_in", delay)
		}
		t = resetTimer(t, delay)
		select {
		case <-t.C:
		case <-r.done:
			return
		}
		if !c.IsConnectionOpen() || r.gen.Load() != gen {
			return
		}
		delay = min(2*delay, r.s.cfg.MaxReconnect)
	}
}

// trySubscribe sends one SUBSCRIBE for every filter and waits for its SUBACK.
func (r *runner) trySubscribe(c mqtt.Client) error {
	filters := make(map[string]byte, len(r.s.plans))
	for _, p := range r.s.plans {
		filters[p.filterText] = p.qos
	}
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(r.s.lim.subscribeTimeout) {
		return fmt.Errorf("no SUBACK within %v", r.s.lim.subscribeTimeout)
	}
	if err := tok.Error(); err != nil {
		return err
	}
	st, ok := tok.(*mqtt.SubscribeToken)
	if !ok {
		return nil
	}
	var refused []string
	for f, code := range st.Result() {
		switch {
		case code == 0x80: // SUBACK failure (MQTT 3.1.1 §3.9.3), e.g. the ACL denies it
			refused = append(refused, f)
		case code < filters[f]:
			r.log.Warn("mqtt broker granted a lower qos", "topic", f, "qos", code)
		}
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		return fmt.Errorf("broker refused %s (SUBACK 0x80)", strings.Join(refused, ", "))
	}
	return nil
}

func (r *runner) onConnectionLost(_ mqtt.Client, err error) {
	if r.stopped.Load() {
		return
	}
	r.s.update(func(st *Stats) { st.Connected = false })
	r.log.Warn("mqtt connection lost", "err", err)
}

func (r *runner) onReconnecting(_ mqtt.Client, _ *mqtt.ClientOptions) {
	if !r.stopped.Load() && !r.reconnLogged.Swap(true) {
		r.log.Info("mqtt reconnecting", "max_backoff", r.s.cfg.MaxReconnect)
	}
}

func (r *runner) onNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	if f, ok := n.(mqtt.ConnectionNotificationFailed); ok && !r.stopped.Load() && !r.failLogged.Swap(true) {
		r.log.Warn("mqtt connect failed, retrying", "broker", r.s.broker.String(), "err", f.Reason)
	}
}

// dial opens the connection for paho (tcp or TLS) and wraps it (see brokerConn).
// paho's own dialer also honours the all_proxy environment variable; this one does not.
func (r *runner) dial(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var (
		c   net.Conn
		err error
	)
	switch u.Scheme {
	case "ssl", "mqtts":
		cfg := r.s.cfg.TLS
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c, err = tls.DialWithDialer(d, "tcp", u.Host, cfg)
	default:
		c, err = d.Dial("tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	r.sessionPresent.Store(false)
	bc := newBrokerConn(c, &r.sessionPresent)
	bc.gen = r.gen.Add(1)
	bc.publish = r.onPublish
	bc.maxPayload = r.s.cfg.MaxPayload
	r.conn.Store(bc)
	return bc, nil
}

// brokerConn wraps the broker connection for three things paho lacks.
//
// It buffers reads. paho reads each packet with a read for the type byte, one per
// remaining-length byte and one for the body: without a buffer, three or more
// syscalls per small PUBLISH.
//
// It notes the session-present flag of the CONNACK, the first packet a 3.1.1 broker
// sends: 0x20, remaining length 2, acknowledge flags (bit 0: session present), return
// code (MQTT 3.1.1 §3.2). Reads are sequential (paho reads the CONNACK, then starts one
// reader goroutine), so br, head and n need no lock.
//
// It lets the subscriber end the connection (breakOff, or a failed writeAcks) so that
// paho reconnects: paho takes a read error saying "use of closed network connection"
// for its own doing and ignores it, so after that reads fail with errBrokenOff or the
// write's error instead.
//
// It bounds every write by writeTimeout. paho's WriteTimeout covers only PUBLISH; a
// PINGREQ or SUBSCRIBE written into a stalled connection would block without limit,
// and a PUBACK (writeAcks) Run. Writes are not buffered: paho writes each packet with
// one Write and expects it sent. Three goroutines write: paho's writer and keepalive
// (paho's own design) and Run's (writeAcks). A net.Conn (and a tls.Conn) is safe for
// concurrent writes and sends each Write's bytes whole, so packets never interleave.
type brokerConn struct {
	net.Conn
	br      *bufio.Reader
	head    [4]byte
	n       int
	present *atomic.Bool
	gen     uint64                // the connection's number (runner.gen)
	ended   atomic.Pointer[error] // why the subscriber ended it; nil while it has not
	// publish, if set, takes the QoS 0 and 1 PUBLISH packets, which paho then never
	// sees; pass holds the bytes of the other packets for paho's reads (inbound.go).
	publish func(gen uint64, p inboundPublish)
	pass    []byte
	passBuf []byte
	// maxPayload is Config.MaxPayload: of a longer PUBLISH payload only a stub is kept.
	maxPayload int
}

// errBrokenOff is the read error of a connection the subscriber ended.
var errBrokenOff = errors.New("connection closed by the subscriber for the broker to deliver dropped messages again")

// breakOff closes the connection; any goroutine. Of a TLS connection it closes the TCP
// connection beneath: tls.Conn.Close first writes a close_notify alert, which can
// block for seconds on a stalled link.
func (c *brokerConn) breakOff() { c.end(errBrokenOff) }

// end closes the connection (see breakOff) and makes reads fail with err.
func (c *brokerConn) end(err error) {
	c.ended.CompareAndSwap(nil, &err)
	conn := c.Conn
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	_ = conn.Close()
}

func newBrokerConn(c net.Conn, present *atomic.Bool) *brokerConn {
	return &brokerConn{Conn: c, br: bufio.NewReaderSize(c, readBuffer), present: present}
}

func (c *brokerConn) Read(b []byte) (int, error) {
	var (
		n   int
		err error
	)
	if c.publish == nil {
		n, err = c.br.Read(b)
	} else {
		n, err = c.readForPaho(b) // inbound.go
	}
	if err != nil {
		if p := c.ended.Load(); p != nil {
			err = *p
		}
	}
	if c.n < len(c.head) && n > 0 {
		c.n += copy(c.head[c.n:], b[:n])
		if c.n == len(c.head) {
			h := c.head
			c.present.Store(h[0] == 0x20 && h[1] == 2 && h[2]&1 == 1 && h[3] == 0)
		}
	}
	return n, err
}

func (c *brokerConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// writeAcks writes PUBACK packets (see runner.writePubacks). A failed write may have
// sent part of a packet, after which nothing more can be sent on the connection, so it
// ends the connection: paho's reader fails with the write's error and paho reconnects,
// as after a failed write of its own.
func (c *brokerConn) writeAcks(b []byte) error {
	_, err := c.Write(b)
	if err != nil {
		err = fmt.Errorf("write PUBACKs: %w", err)
		c.end(err)
	}
	return err
}

// entry is one message the subscriber holds until its PUBACK (or until it is given up).
type entry struct {
	seq   uint64
	gen   uint64
	topic string
	qos1  bool              // needs a PUBACK (QoS 0 has none)
	qos2  bool              // QoS 2: a PUBREC, not a PUBACK (MQTT 3.1.1 §4.3.3)
	id    uint16            // its packet identifier
	rs    []reading.Reading // nil: malformed
	cost  int64             // bytes counted in Subscriber.heldBytes
	state atomic.Uint64     // one of the states below
	// behind: a QoS 1 message after a refused one of its connection, so never
	// acknowledged; Run's goroutine only.
	behind bool
}

const (
	statePending   = iota // batch sent, Durable not yet called
	stateAck              // durable (or malformed, or QoS 0 and kept by the pipeline): acknowledge
	stateRefused          // QoS 1 and refused by the pipeline: leave unacknowledged for the broker to deliver again
	stateAbandoned        // never handed to the pipeline (shutdown): leave unacknowledged
)

func (e *entry) st() uint64 { return e.state.Load() }

// durable returns the Durable callback of a batch of entries (one connection, one
// QoS): any goroutine, once (later calls are ignored), never blocks. An error for QoS
// 1 messages means the pipeline kept nothing of them: their connection is marked at
// once, so that no later message of it is taken (see Run).
func (r *runner) durable(es []*entry) func(error) {
	return func(err error) {
		var resolved, refused uint64
		for _, e := range es {
			next := uint64(stateAck)
			if err != nil && e.qos1 {
				next = stateRefused
			}
			if !e.state.CompareAndSwap(statePending, next) {
				continue
			}
			resolved++
			if next == stateRefused {
				refused++
				raise(&r.refusedGen, e.gen)
				raise(&r.dropGen, e.gen)
			}
		}
		if refused > 0 {
			r.s.update(func(st *Stats) { st.NotDurable += refused })
			r.diskErr.CompareAndSwap(nil, &err) // keep the first
		}
		if resolved > 0 {
			r.poke()
		}
	}
}

// raise sets g to v if v is greater (connection numbers only grow).
func raise(g *atomic.Uint64, v uint64) {
	for {
		old := g.Load()
		if old >= v || g.CompareAndSwap(old, v) {
			return
		}
	}
}

// take handles a message from the inbox and every message queued behind it there, up
// to maxGroup messages (limits.group) or maxGroupReadings readings: the good ones of each connection
// (and QoS) go to the pipeline as one batch, in arrival order. One batch costs the
// writer one append (one write(2)) and the subscriber one Durable call, however many
// messages it carries. take waits for nothing: a message alone is a batch of one.
func (r *runner) take(ctx context.Context, a arrived, out chan<- reading.Batch) {
	var group []*entry
	n := 0 // readings in group
	for i := 1; ; i++ {
		if e := r.takeOne(a); e != nil {
			if len(group) > 0 && (e.gen != group[0].gen || e.qos1 != group[0].qos1) {
				if !r.sendGroup(ctx, group, n, out) {
					r.abandon(e)
					return
				}
				group, n = nil, 0
			}
			group = append(group, e)
			n += len(e.rs)
		}
		// Only this goroutine receives from the inbox: a queued message is there.
		if i >= r.s.lim.group || n >= maxGroupReadings || len(r.inbox) == 0 {
			break
		}
		a = <-r.inbox
	}
	if len(group) > 0 {
		r.sendGroup(ctx, group, n, out)
	}
}

// takeOne decodes a message from the inbox; see prepare. A QoS 1 message behind a
// refused one of its connection is not taken.
func (r *runner) takeOne(a arrived) *entry {
	if a.qos1 {
		r.inboxAcks.Add(-1)
		if a.gen == r.refusedGen.Load() {
			// Behind a refused message of its connection: it cannot be acknowledged on
			// this connection, and the broker delivers it again after the reconnect.
			r.s.held.Add(-1)
			r.s.heldBytes.Add(-a.cost)
			r.s.update(func(st *Stats) { st.NotDurable++ })
			r.maybeReconnect()
			return nil
		}
	}
	e := r.prepare(a)
	r.maybeReconnect()
	return e
}

// push adds an entry for a message; one of an earlier connection goes to stale.
func (r *runner) push(a arrived, rs []reading.Reading, state uint64) *entry {
	r.seq++
	e := &entry{seq: r.seq, gen: a.gen, topic: a.topic, qos1: a.qos1, qos2: a.qos2, id: a.id, rs: rs, cost: a.cost}
	e.state.Store(state)
	r.noteConnection()
	if a.gen == r.curGen {
		r.queue = append(r.queue, e)
		if e.qos1 {
			r.ackable++
		}
	} else {
		r.stale = append(r.stale, e)
	}
	r.s.update(func(st *Stats) { st.InFlight = len(r.queue) + len(r.stale) })
	return e
}

// noteConnection moves the queue to stale when a new connection has begun.
func (r *runner) noteConnection() {
	g := r.gen.Load()
	if g == r.curGen {
		return
	}
	r.curGen = g
	r.stale = append(r.stale, r.queue...)
	clear(r.queue)
	r.queue = r.queue[:0]
	r.ackable = 0
}

// release stops counting a resolved entry as held.
func (r *runner) release(e *entry) {
	r.s.held.Add(-1)
	r.s.heldBytes.Add(-e.cost)
}

// ackReady acknowledges messages from the head of the queue up to the first one still
// waiting to be durable, moves a refused (or abandoned) message and every later one of
// its connection to stale (PUBACKs go in arrival order, MQTT 3.1.1 §4.6, so none of them can be sent),
// releases resolved stale entries and checks whether a forced reconnect is due.
func (r *runner) ackReady() {
	r.noteConnection()
	// An abandoned message (shutdown) ends the acknowledged prefix just the same.
	if i := slices.IndexFunc(r.queue, func(e *entry) bool { st := e.st(); return st == stateRefused || st == stateAbandoned }); i >= 0 {
		refused := r.queue[i].st() == stateRefused
		for j, e := range r.queue[i:] {
			if e.qos1 {
				r.ackable--
				e.behind = refused && j > 0
			}
		}
		r.stale = append(r.stale, r.queue[i:]...)
		clear(r.queue[i:])
		r.queue = r.queue[:i]
		if refused && !r.diskFailing {
			r.diskFailing = true
			var cause error
			if p := r.diskErr.Load(); p != nil {
				cause = *p
			}
			r.log.Warn("mqtt readings refused, the disk fails; leaving them unacknowledged for the broker to deliver again", "err", cause)
		}
	}
	r.pubacks = r.pubacks[:0]
	n := 0
	for _, e := range r.queue {
		if e.st() != stateAck {
			break // pending
		}
		if e.qos1 {
			r.ackable--
			r.pubacks = appendPuback(r.pubacks, e.qos2, e.id) // of the current connection
		}
		r.durableAgain(e)
		r.release(e)
		n++
	}
	if n > 0 {
		clear(r.queue[:n])
		r.queue = r.queue[n:]
	}
	acked := r.writePubacks()
	var behind uint64
	if len(r.stale) > 0 {
		// Stale entries are never acknowledged: paho drops acks of an earlier
		// connection, and the broker delivers them again on the new one.
		r.stale = slices.DeleteFunc(r.stale, func(e *entry) bool {
			switch e.st() {
			case statePending:
				return false
			case stateAck:
				r.durableAgain(e)
				if e.behind {
					behind++ // durable, but left unacknowledged behind a refused one
				}
			}
			r.release(e)
			return true
		})
	}
	r.s.update(func(st *Stats) {
		st.NotDurable += behind
		st.Acked += acked
		st.InFlight = len(r.queue) + len(r.stale)
	})
	r.maybeReconnect()
}

// pubackType and pubackLen are the fixed header of a PUBACK packet (type 4, remaining
// length 2); the packet identifier follows, big-endian (MQTT 3.1.1 §3.4). A PUBREC
// (type 5, §3.5) is the same but for its type.
const pubackType, pubrecType, pubackLen = 0x40, 0x50, 2

// appendPuback appends the acknowledgement of a message: a PUBACK, or of a QoS 2
// message (which paho's reader hands to onMessage) a PUBREC, as paho's Message.Ack
// writes; paho answers the broker's PUBREL with the PUBCOMP itself.
func appendPuback(b []byte, qos2 bool, id uint16) []byte {
	t := byte(pubackType)
	if qos2 {
		t = pubrecType
	}
	return append(b, t, pubackLen, byte(id>>8), byte(id))
}

// writePubacks writes the PUBACKs ackReady collected to the current connection, all
// in one write, and returns how many it wrote. paho would write each with a syscall
// and a write deadline of its own, handed through two goroutines; after a group
// commit a burst of them goes out at once, so the subscriber writes them itself. If
// the connection is no longer the current one (gen), they are not written: the
// broker delivers those messages again on the new one. A failed write ends the
// connection (brokerConn.writeAcks), and paho reconnects.
func (r *runner) writePubacks() uint64 {
	n := len(r.pubacks) / 4
	if n == 0 {
		return 0
	}
	c := r.conn.Load()
	if c == nil || c.gen != r.curGen {
		return 0
	}
	if err := c.writeAcks(r.pubacks); err != nil {
		if !r.stopped.Load() {
			r.log.Warn("mqtt write of PUBACKs failed, reconnecting", "err", err, "pubacks", n)
		}
		return 0
	}
	return uint64(n)
}

// durableAgain notes that a batch was durable: the disk works.
func (r *runner) durableAgain(e *entry) {
	if e.rs == nil || !e.qos1 || !r.diskFailing {
		return
	}
	r.diskFailing = false
	r.diskErr.Store(nil)
	r.log.Info("mqtt readings durable again")
}

// sendGroup hands the pipeline one batch with the readings of the entries (n in all),
// all of one connection and QoS, acknowledging earlier messages while it waits. It
// reports false if ctx ended first; the entries are then abandoned.
func (r *runner) sendGroup(ctx context.Context, es []*entry, n int, out chan<- reading.Batch) bool {
	rs := es[0].rs
	if len(es) > 1 {
		rs = make([]reading.Reading, 0, n)
		for _, e := range es {
			rs = append(rs, e.rs...)
		}
	}
	b := reading.Batch{Readings: rs, Redeliverable: es[0].qos1, Durable: r.durable(es), WindowFull: r.windowFull()}
	for {
		select {
		case out <- b:
			r.s.update(func(st *Stats) { st.Readings += uint64(len(rs)) })
			return true
		case <-r.notify:
			r.ackReady()
		case <-r.forceC:
			r.forceC = nil
			r.maybeReconnect()
		case <-ctx.Done():
			r.abandon(es...)
			return false
		}
	}
}

// abandon gives up entries never handed to the pipeline (Run is stopping).
func (r *runner) abandon(es ...*entry) {
	for _, e := range es {
		e.state.Store(stateAbandoned)
	}
	r.ackReady()
}

// maybeReconnect ends a drop episode: once the messages taken on the connection are
// acknowledged (or after drain), and no sooner than forcedGap after the previous forced
// reconnect, it closes the connection, and paho connects again.
func (r *runner) maybeReconnect() {
	g := r.dropGen.Load()
	if g == 0 || g != r.gen.Load() || g == r.forced {
		return // no episode, or a new connection: the broker delivers the dropped messages again
	}
	now := time.Now()
	if r.episode != g {
		r.episode, r.episodeAt, r.drainedAt = g, now, time.Time{}
		if r.refusedGen.Load() != g { // a refusal is logged by ackReady
			r.log.Warn("mqtt subscriber full, leaving messages unacknowledged until a reconnect",
				"held", r.s.held.Load(), "held_bytes", r.s.heldBytes.Load(), "max_held", r.s.lim.held, "max_held_bytes", r.s.lim.heldBytes)
		}
	}
	r.noteConnection()
	drained := r.ackable == 0 && r.inboxAcks.Load() == 0
	if drained && r.drainedAt.IsZero() {
		r.drainedAt = now
	}
	at := r.episodeAt.Add(r.s.lim.drain)
	if drained {
		at = r.drainedAt.Add(ackFlush)
	}
	at = maxTime(at, r.nextForce)
	if now.Before(at) {
		r.forceTimer = resetTimer(r.forceTimer, at.Sub(now))
		r.forceC = r.forceTimer.C
		return
	}
	r.forced, r.nextForce = g, now.Add(r.s.lim.forcedGap)
	r.s.update(func(st *Stats) { st.ForcedReconnects++ })
	r.log.Warn("mqtt closing the connection for the broker to deliver unacknowledged messages again",
		"dropped", r.episodeDrops.Swap(0), "refused", r.refusedGen.Load() == g, "drained", drained)
	if c := r.conn.Load(); c != nil && c.gen == g {
		c.breakOff()
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// resetTimer arms t (made if nil) to fire after d.
func resetTimer(t *time.Timer, d time.Duration) *time.Timer {
	if t == nil {
		return time.NewTimer(d)
	}
	t.Reset(d)
	return t
}

func (r *runner) stopTimers() {
	if r.forceTimer != nil {
		r.forceTimer.Stop()
	}
}

// handle decodes one message and hands its batch to the pipeline, acknowledging
// earlier messages while it waits.
func (r *runner) handle(ctx context.Context, a arrived, out chan<- reading.Batch) {
	if e := r.prepare(a); e != nil {
		r.sendGroup(ctx, []*entry{e}, len(e.rs), out)
	}
}

// prepare decodes one message. A malformed one is rejected (acknowledged after the
// messages before it); a good one becomes a pending entry, returned for sendGroup.
func (r *runner) prepare(a arrived) *entry {
	r.s.update(func(st *Stats) {
		st.Messages++
		st.Bytes += uint64(a.size)
	})
	var (
		rs  []reading.Reading
		err error
	)
	if a.oversize {
		err = oversize(a.size, r.s.cfg.MaxPayload)
	} else {
		rs, err = r.s.decode(a.topic, a.payload, a.at)
	}
	if err != nil {
		r.reject(a, err)
		return nil
	}
	return r.push(a, rs, statePending)
}

func oversize(size, limit int) error {
	return malformed(KindOversize, "payload of %d bytes exceeds max_payload %d", size, limit)
}

// decode picks the first subscription whose filter matches the topic.
func (s *Subscriber) decode(topic string, payload []byte, at time.Time) ([]reading.Reading, error) {
	if len(payload) > s.cfg.MaxPayload {
		return nil, oversize(len(payload), s.cfg.MaxPayload)
	}
	for _, p := range s.plans {
		if filterMatches(p.filter, topic) {
			return p.admit(topic, payload, at)
		}
	}
	// A filter removed from the config stays in the broker's session until the client
	// ID changes; its messages end up here.
	return nil, malformed(KindTopic, "topic %q matches no subscription", topic)
}

// reject acknowledges, counts, logs and dead-letters a malformed message.
func (r *runner) reject(a arrived, err error) {
	var de *DecodeError
	if !errors.As(err, &de) {
		de = &DecodeError{Kind: KindJSON, Err: err} // not reached: decode returns *DecodeError
	}
	r.s.update(func(st *Stats) { st.DeadLettered++ })
	r.s.mu.Lock()
	r.s.errorsByKind[de.Kind]++
	r.s.mu.Unlock()
	if ok, n := r.malformedLog.allow(); ok {
		r.log.Warn("mqtt message malformed, dead-lettered", "topic", a.topic, "err", de, "suppressed", n)
	}
	if werr := r.s.dl.write(a.at, a.topic, de, a.payload, a.size); werr != nil {
		if !r.dlFailing {
			r.dlFailing = true
			r.log.Warn("mqtt dead-letter file not writable", "path", r.s.cfg.DeadLetter, "err", werr)
		}
	} else if r.dlFailing {
		r.dlFailing = false
		r.log.Info("mqtt dead-letter file writable again", "path", r.s.cfg.DeadLetter)
	}
	r.push(a, nil, stateAck)
	r.ackReady()
}

// finish waits up to ackGrace for the batches the pipeline holds to become durable. It
// stops early when a refused message is next: nothing more can be acknowledged then.
func (r *runner) finish() {
	r.ackReady()
	t := time.NewTimer(ackGrace)
	defer t.Stop()
	for len(r.queue) > 0 && r.queue[0].st() == statePending {
		select {
		case <-r.notify:
			r.ackReady()
		case <-t.C:
			r.log.Warn("mqtt stopping with messages unacknowledged, the broker will deliver them again", "count", len(r.queue))
			return
		}
	}
	if len(r.queue) > 0 {
		r.log.Warn("mqtt stopping with messages not durable, the broker will deliver them again", "count", len(r.queue))
	}
}

// throttle lets one log line through per logEvery and counts the rest.
type throttle struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

func (t *throttle) allow() (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Before(t.next) {
		t.suppressed++
		return false, 0
	}
	t.next = now.Add(logEvery)
	n := t.suppressed
	t.suppressed = 0
	return true, n
}
