// Package mqttsub is envgate's MQTT source: it subscribes to a broker (LoRaWAN network
// servers, ESP32 nodes, smart noise meters, data loggers), maps each topic to a site,
// device and quantity, decodes JSON, plain-number and line-protocol payloads into
// readings, and acknowledges a message to the broker only once its readings are
// durable.
//
// Delivery is at least once, end to end. The client keeps a persistent session (MQTT
// 3.1.1, clean session off, stable client ID, QoS 1), so the broker queues messages
// while the gateway is away, and it sends the PUBACK of a message only after the
// pipeline has fsynced its readings (reading.Batch.Durable). Whatever was not
// acknowledged when a connection ends is delivered again on the next one, so a reading
// can arrive twice after a crash, a disk error or a lost connection. Readings stamped
// from the payload then overwrite the same InfluxDB point; readings stamped with the
// arrival time appear twice.
//
// Decoding is pure (Decode) and separate from the connection (Subscriber.Run).
package mqttsub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/envgate/envgate/gateway/reading"
)

// Tuning of the client. The broker's in-flight window bounds unacknowledged QoS 1
// messages (mosquitto's max_inflight_messages, default 20), so the inbox only fills
// with QoS 0 floods or a stalled pipeline.
const (
	inboxSize = 1024
	// WriteTimeout: a half-open cellular TCP connection otherwise blocks writes (and
	// with them PUBACKs and pings) forever (tech-notes §6).
	writeTimeout = 10 * time.Second
	// connectTimeout bounds dial, TLS and CONNACK of one attempt.
	connectTimeout = 10 * time.Second
	// connectRetry is the pause between first-connection attempts (paho retries those
	// at a fixed interval; the back-off up to MaxReconnect applies after a loss).
	connectRetry = 5 * time.Second
	// subscribeTimeout bounds the wait for SUBACK in the connect handler.
	subscribeTimeout = 30 * time.Second
	// ackGrace: on shutdown Run waits this long for the pipeline to make the batches it
	// already took durable, so their PUBACKs go out and the broker does not deliver
	// them again after the restart. It must fit in the unit's stop timeout.
	ackGrace = 2 * time.Second
	// disconnectQuiesce (ms) lets the final PUBACKs and DISCONNECT reach the broker.
	disconnectQuiesce = 250
	// logEvery throttles per-message warnings (malformed, dropped, not durable).
	logEvery = time.Minute
)

// Subscriber is one MQTT source. Create it with New; Run connects and consumes.
type Subscriber struct {
	cfg     Config
	broker  *url.URL
	plans   []*plan
	log     *slog.Logger
	running atomic.Bool

	mu    sync.Mutex // guards the counters below
	stats Stats
	// errorsByKind is Stats.ErrorsByKind, copied by Stats().
	errorsByKind map[string]uint64
}

// Stats are a Subscriber's counters since New; Run can be called again and they go on.
type Stats struct {
	Messages     uint64            // messages received (malformed ones included)
	Bytes        uint64            // their payload bytes
	Readings     uint64            // readings handed to the pipeline
	DeadLettered uint64            // malformed messages: acknowledged, counted, written to DeadLetter if set
	ErrorsByKind map[string]uint64 // malformed messages by DecodeError kind
	Dropped      uint64            // messages dropped unacknowledged because the inbox was full
	NotDurable   uint64            // batches whose Durable reported an error: left unacknowledged
	Acked        uint64            // messages acknowledged (PUBACK for QoS 1)
	InFlight     int               // messages received and not yet acknowledged or given up
	Connected    bool
	Subscribed   bool   // the broker confirmed every subscription (or kept them in the session)
	Reconnects   uint64 // successful connections after the first of each Run
}

// Stats returns a snapshot of the counters. It is safe to call from any goroutine.
func (s *Subscriber) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ErrorsByKind = maps.Clone(s.errorsByKind)
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
// logs each state change once. Run returns an error only if called while running; it
// may be called again after it returned (same client ID, so same broker session).
//
// Each good message becomes one reading.Batch on out, and its PUBACK is sent only when
// the pipeline calls the batch's Durable(nil). PUBACKs go in the order the messages
// arrived (MQTT 3.1.1 §4.6): a batch made durable before an earlier one waits for it;
// both are normally covered by the same fsync.
//
// A malformed message (undecodable, oversized, no matching subscription, implausible
// value) is acknowledged at once (after the messages before it), counted by kind,
// logged (throttled) and appended to Config.DeadLetter as one line:
//
//	<RFC3339 arrival> topic=<topic> reason=<kind>: <detail>\t<payload as %q, first 1 KiB>
//
// Messages are left unacknowledged, so that the broker delivers them again on the next
// connection (not before: MQTT 3.1.1 resends only on reconnect), in three cases, each
// counted: Durable reported an error (the disk failed); the inbox was full (the
// pipeline stalled and a QoS 0 flood or a broker with a huge in-flight window filled
// it); Run stopped before the pipeline made them durable within a short grace period.
// Unacknowledged QoS 1 messages hold slots of the broker's in-flight window, so a
// persistently failing disk stops the flow: back-pressure, not loss.
func (s *Subscriber) Run(ctx context.Context, out chan<- reading.Batch) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("mqtt source %q: Run called twice", s.cfg.Name)
	}
	defer s.running.Store(false)

	r := &runner{
		s:      s,
		log:    s.log,
		inbox:  make(chan arrived, inboxSize),
		notify: make(chan struct{}, 1),
		dl:     &deadLetter{path: s.cfg.DeadLetter},
	}
	client := mqtt.NewClient(r.options())
	// With ConnectRetry the token completes only once connected (or on Disconnect);
	// the handlers report progress, so Run does not wait for it.
	client.Connect()

	for {
		select {
		case <-ctx.Done():
			r.finish()
			r.stopped.Store(true)
			client.Disconnect(disconnectQuiesce)
			s.update(func(st *Stats) { st.Connected, st.Subscribed = false, false })
			if err := r.dl.close(); err != nil {
				r.log.Warn("close dead-letter file", "path", s.cfg.DeadLetter, "err", err)
			}
			r.log.Info("mqtt disconnected", "unacknowledged", len(r.queue))
			return nil
		case a := <-r.inbox:
			r.handle(ctx, a, out)
		case <-r.notify:
			r.ackReady()
		}
	}
}

// arrived is a message with its arrival time, stamped in the paho handler.
type arrived struct {
	msg mqtt.Message
	at  time.Time
}

// runner is the state of one Run. Its plain fields are touched only by Run's
// goroutine; the atomics and throttles by paho's goroutines too.
type runner struct {
	s      *Subscriber
	log    *slog.Logger
	inbox  chan arrived
	notify chan struct{} // poked (never blocking) by Durable callbacks
	dl     *deadLetter

	queue       []*entry // unacknowledged messages in arrival order
	diskFailing bool     // the last resolved batch was not durable (log state changes)
	dlFailing   bool     // the dead-letter file could not be written

	sessionPresent atomic.Bool // from the CONNACK of the current connection
	subscribed     atomic.Bool // the broker's session holds our subscriptions
	stopped        atomic.Bool // Run has returned: late paho callbacks change nothing
	everConnected  atomic.Bool
	reconnLogged   atomic.Bool // "reconnecting" logged for the current outage
	failLogged     atomic.Bool // "connect failed" logged for the current outage

	malformedLog, droppedLog throttle
}

// options configures paho for at-least-once delivery (tech-notes §6).
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
		SetCustomOpenConnectionFn(r.dial)
	// The default Store is a MemoryStore. No FileStore: it does not fsync and panics on
	// I/O errors; durability is the pipeline's buffer (tech-notes §6).
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS)
	}
	return o
}

// onMessage runs on paho's router goroutine and must never block: blocking stalls
// keep-alive handling and can deadlock paho (tech-notes §6). If the inbox is full the
// message is dropped without PUBACK, so the broker delivers it again next session.
func (r *runner) onMessage(_ mqtt.Client, m mqtt.Message) {
	select {
	case r.inbox <- arrived{msg: m, at: r.s.cfg.Now()}:
	default:
		r.s.update(func(st *Stats) { st.Dropped++ })
		if ok, n := r.droppedLog.allow(); ok {
			r.log.Warn("mqtt inbox full, message left unacknowledged for redelivery", "topic", m.Topic(), "suppressed", n)
		}
	}
}

func (r *runner) onConnect(c mqtt.Client) {
	if r.stopped.Load() {
		return
	}
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
		r.subscribe(c)
	}
}

// subscribe runs in the connect handler's goroutine (paho starts one per call), so
// waiting for SUBACK is fine.
func (r *runner) subscribe(c mqtt.Client) {
	filters := make(map[string]byte, len(r.s.plans))
	for _, p := range r.s.plans {
		filters[p.filterText] = p.qos
	}
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(subscribeTimeout) {
		r.log.Warn("mqtt subscribe timed out, retrying after the next reconnect", "timeout", subscribeTimeout)
		return
	}
	if err := tok.Error(); err != nil {
		r.log.Warn("mqtt subscribe failed, retrying after the next reconnect", "err", err)
		return
	}
	ok := true
	if st, isSub := tok.(*mqtt.SubscribeToken); isSub {
		for f, code := range st.Result() {
			switch {
			case code == 0x80: // SUBACK failure (MQTT 3.1.1 §3.9.3), e.g. the ACL denies it
				ok = false
				r.log.Error("mqtt subscription refused by broker", "topic", f)
			case code < filters[f]:
				r.log.Warn("mqtt broker granted a lower qos", "topic", f, "qos", code)
			}
		}
	}
	r.subscribed.Store(ok)
	if !r.stopped.Load() {
		r.s.update(func(st *Stats) { st.Subscribed = ok })
	}
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
	return &brokerConn{Conn: c, present: &r.sessionPresent}, nil
}

// brokerConn wraps the broker connection for two things paho lacks.
//
// It notes the session-present flag of the CONNACK, the first packet a 3.1.1 broker
// sends: 0x20, remaining length 2, acknowledge flags (bit 0: session present), return
// code (MQTT 3.1.1 §3.2). Reads are sequential (paho reads the CONNACK, then starts one
// reader goroutine), so head and n need no lock.
//
// It bounds every write by writeTimeout. paho's WriteTimeout covers only PUBLISH; a
// PUBACK, PINGREQ or SUBSCRIBE written into a stalled connection would block without
// limit, and with it Message.Ack and so Run.
type brokerConn struct {
	net.Conn
	head    [4]byte
	n       int
	present *atomic.Bool
}

func (c *brokerConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
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

// entry is one message awaiting its PUBACK.
type entry struct {
	msg    mqtt.Message
	batch  bool // its readings went to the pipeline (it is not a malformed message)
	state  atomic.Uint32
	once   sync.Once
	err    error // written in once, before state becomes stateFailed
	notify chan<- struct{}
}

const (
	statePending   = iota // batch sent, Durable not yet called
	stateAck              // durable (or malformed): acknowledge
	stateFailed           // Durable(err): leave unacknowledged
	stateAbandoned        // never handed to the pipeline (shutdown): leave unacknowledged
)

// durable is the batch's Durable callback: any goroutine, once (later calls are
// ignored), never blocks.
func (e *entry) durable(err error) {
	e.once.Do(func() {
		if err != nil {
			e.err = err
			e.state.Store(stateFailed)
		} else {
			e.state.Store(stateAck)
		}
		select {
		case e.notify <- struct{}{}:
		default: // a poke is already pending
		}
	})
}

func (r *runner) push(m mqtt.Message, batch bool, state uint32) *entry {
	e := &entry{msg: m, batch: batch, notify: r.notify}
	e.state.Store(state)
	r.queue = append(r.queue, e)
	r.s.update(func(st *Stats) { st.InFlight = len(r.queue) })
	return e
}

// ackReady acknowledges messages from the head of the queue up to the first one still
// waiting for its Durable call.
func (r *runner) ackReady() {
	var acked, failed uint64
loop:
	for len(r.queue) > 0 {
		e := r.queue[0]
		switch e.state.Load() {
		case statePending:
			break loop
		case stateAck:
			// After a reconnect paho drops acks of the previous connection's messages,
			// which is right: the broker resends them with the same packet ID.
			e.msg.Ack()
			acked++
			if r.diskFailing && e.batch {
				r.diskFailing = false
				r.log.Info("mqtt readings durable again")
			}
		case stateFailed:
			failed++
			if !r.diskFailing {
				r.diskFailing = true
				r.log.Warn("mqtt readings not durable, messages left unacknowledged for redelivery", "err", e.err)
			}
		}
		r.queue[0] = nil
		r.queue = r.queue[1:]
	}
	r.s.update(func(st *Stats) {
		st.Acked += acked
		st.NotDurable += failed
		st.InFlight = len(r.queue)
	})
}

// handle decodes one message and hands its batch to the pipeline, acknowledging
// earlier messages while it waits.
func (r *runner) handle(ctx context.Context, a arrived, out chan<- reading.Batch) {
	topic, payload := a.msg.Topic(), a.msg.Payload()
	r.s.update(func(st *Stats) {
		st.Messages++
		st.Bytes += uint64(len(payload))
	})
	rs, err := r.s.decode(topic, payload, a.at)
	if err != nil {
		r.reject(a, err)
		return
	}
	e := r.push(a.msg, true, statePending)
	b := reading.Batch{Readings: rs, Durable: e.durable}
	for {
		select {
		case out <- b:
			r.s.update(func(st *Stats) { st.Readings += uint64(len(rs)) })
			return
		case <-r.notify:
			r.ackReady()
		case <-ctx.Done():
			e.state.Store(stateAbandoned)
			r.ackReady()
			return
		}
	}
}

// decode picks the first subscription whose filter matches the topic.
func (s *Subscriber) decode(topic string, payload []byte, at time.Time) ([]reading.Reading, error) {
	if len(payload) > s.cfg.MaxPayload {
		return nil, malformed(KindOversize, "payload of %d bytes exceeds max_payload %d", len(payload), s.cfg.MaxPayload)
	}
	for _, p := range s.plans {
		if filterMatches(p.filter, topic) {
			return p.decode(topic, payload, at)
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
		r.log.Warn("mqtt message malformed, dead-lettered", "topic", a.msg.Topic(), "err", de, "suppressed", n)
	}
	if werr := r.dl.write(a.at, a.msg.Topic(), de, a.msg.Payload()); werr != nil {
		if !r.dlFailing {
			r.dlFailing = true
			r.log.Warn("mqtt dead-letter file not writable", "path", r.s.cfg.DeadLetter, "err", werr)
		}
	} else if r.dlFailing {
		r.dlFailing = false
		r.log.Info("mqtt dead-letter file writable again", "path", r.s.cfg.DeadLetter)
	}
	r.push(a.msg, false, stateAck)
	r.ackReady()
}

// finish waits up to ackGrace for the batches the pipeline holds to become durable.
func (r *runner) finish() {
	r.ackReady()
	if len(r.queue) == 0 {
		return
	}
	t := time.NewTimer(ackGrace)
	defer t.Stop()
	for len(r.queue) > 0 {
		select {
		case <-r.notify:
			r.ackReady()
		case <-t.C:
			r.log.Warn("mqtt stopping with messages unacknowledged, the broker will deliver them again", "count", len(r.queue))
			return
		}
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
