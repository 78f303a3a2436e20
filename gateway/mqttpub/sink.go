// Package mqttpub publishes readings to a central MQTT broker (MQTT 3.1.1, QoS 1): the
// uplink of a box behind carrier NAT, which cannot be scraped or written to from the
// centre but can keep one outgoing connection.
//
// A Sink publishes one message per reading, in batch order, on one connection, and
// Write returns nil only after the broker acknowledged (PUBACK) every message of the
// batch, so the forwarder advances its cursor only over readings the broker has.
// Delivery is at least once: a batch that fails part-way is sent again in full on a
// new connection. A consumer keeps one message per (gateway, device, quantity, time),
// which is unique for every reading of a box (docs/design.md, "MQTT uplink").
package mqttpub

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/time/rate"

	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/reading"
)

// Payload formats.
const (
	FormatJSON = "json" // one JSON object per reading (see Payload)
	FormatLine = "line" // one line of InfluxDB line protocol per reading (influx.Line, nanoseconds)
)

// Formats lists the payload formats, for validation messages.
var Formats = []string{FormatJSON, FormatLine}

// QoS is the quality of service of every message: 1, at least once. QoS 0 would lose
// what a dropped connection swallows; QoS 2 costs two more packets per message on a
// metered SIM for a guarantee the consumer's dedupe gives anyway.
const QoS = 1

// Config configures one MQTT uplink sink.
type Config struct {
	Name      string      // sink name, for logs and errors
	Broker    string      // tcp://, mqtt://, ssl:// or mqtts:// host[:port]
	ClientID  string      // stable and unique per box (see DefaultClientID)
	Username  string      // optional
	Password  string      // optional
	TLS       *tls.Config // for ssl:// and mqtts://: CA, client certificate and key, server name
	Topic     *Topic      // from ParseTopic
	Format    string      // FormatJSON or FormatLine
	GatewayID string      // the box, for {gateway} and the payload
	// Timeout bounds the connect, and the wait for each PUBACK after its message was
	// sent (paho writes a message within Timeout too).
	Timeout time.Duration
	// KeepAlive is the MQTT keep-alive; 0 means DefaultKeepAlive.
	KeepAlive time.Duration
	// MaxBytesPerSecond caps the bytes published, averaged over a second (see
	// MessageBytes); 0 means no cap.
	MaxBytesPerSecond int64
}

// DefaultKeepAlive is Config.KeepAlive's default: paho's, and short enough that a
// half-open cellular connection is noticed within a minute and a half.
const DefaultKeepAlive = 30 * time.Second

// DefaultClientID returns the client id of a box's uplink sink that names none:
// "envgate-<gateway>-<sink>". The gateway id is unique in a fleet, so is the client id,
// and the broker's log names the box. It can be longer than the 23 characters that a
// strict MQTT 3.1.1 broker must accept (§3.1.3.1); mosquitto, EMQX, HiveMQ and NATS take
// longer ids, and client_id overrides it for one that does not.
func DefaultClientID(gatewayID, sink string) string {
	return "envgate-" + gatewayID + "-" + sink
}

// Stats counts what a Sink has done since New. All counters only grow.
type Stats struct {
	Published uint64 // messages the broker acknowledged
	Bytes     uint64 // MessageBytes of the acknowledged messages
	Invalid   uint64 // readings skipped, not sent (Quality Bad, or failing Validate); once per delivered batch
	Connects  uint64 // connections made (the first and every reconnect)
	Connected bool   // a connection is open now
	// Throttled is the total time Write waited for the rate cap.
	Throttled time.Duration
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("sink closed")

// conn is one connection to the broker, as Write uses it; paho's client, or a test fake.
type conn interface {
	publish(topic string, payload []byte) mqtt.Token
	connected() bool // false once the connection is lost
	close()
}

// A Sink publishes batches of readings to one broker. Write is called from one goroutine
// at a time (it is not a gateway.Preparer: one batch at a time keeps the order); Stats
// and Close from any.
type Sink struct {
	cfg   Config
	log   *slog.Logger
	addr  string // the broker's host:port, for Probe
	dial  func(ctx context.Context) (conn, error)
	limit *rate.Limiter // nil without a cap

	mu     sync.Mutex // guards conn and closed
	conn   conn       // nil until the first Write and after a failure
	closed bool

	published, bytes, invalid, connects atomic.Uint64
	throttled                           atomic.Int64
	up                                  atomic.Bool  // a connection is open, for Stats (which must not wait for s.mu during a connect)
	lastWarn                            atomic.Int64 // Unix ns of the last invalid-readings warning
}

// warnEvery throttles the warning about readings that are not sent.
const warnEvery = time.Minute

// New checks cfg and returns a Sink. It does not connect: the first Write does. log
// should carry the sink's name; nil discards the sink's logs.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := check(cfg); err != nil {
		return nil, fmt.Errorf("mqtt sink %s: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	s := &Sink{cfg: cfg, log: log, addr: brokerAddr(cfg.Broker)}
	s.dial = s.connect
	if cfg.MaxBytesPerSecond > 0 {
		// A burst of one second's worth: the cap holds over every second, not only on
		// average over a long run.
		s.limit = rate.NewLimiter(rate.Limit(cfg.MaxBytesPerSecond), int(min(cfg.MaxBytesPerSecond, 1<<30)))
	}
	return s, nil
}

// brokerAddr is the host:port of a broker URL check accepted, the port from its scheme
// when it has none (1883 for tcp:// and mqtt://, 8883 for ssl:// and mqtts://).
func brokerAddr(broker string) string {
	u, err := url.Parse(broker)
	if err != nil {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	port := "1883"
	if u.Scheme == "ssl" || u.Scheme == "mqtts" {
		port = "8883"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Probe reports whether the broker accepts connections again: a TCP connection to its
// address, closed at once — no TLS handshake and no MQTT session, so a broker that a
// whole fleet probes while it comes back pays little. The forwarder calls it while it
// backs off after a transient failure (gateway.Prober), so that delivery resumes within
// seconds of the broker's return instead of after up to retry_max.
func (s *Sink) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.Timeout, probeTimeout))
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// probeTimeout bounds a probe (gateway.Prober: a few seconds at most).
const probeTimeout = 5 * time.Second

// check reports the first problem of cfg; config validation reports them all, with
// their keys, before New is called.
func check(cfg Config) error {
	u, err := url.Parse(cfg.Broker)
	switch {
	case err != nil || !slices.Contains([]string{"tcp", "mqtt", "ssl", "mqtts"}, u.Scheme) || u.Hostname() == "":
		return errors.New("broker: must be tcp://, mqtt://, ssl:// or mqtts:// with a host and an optional port")
	case cfg.ClientID == "":
		return errors.New("client_id: required")
	case cfg.Topic == nil:
		return errors.New("topic: required")
	case !slices.Contains(Formats, cfg.Format):
		return fmt.Errorf("format: must be %s or %s", FormatJSON, FormatLine)
	case cfg.GatewayID == "":
		return errors.New("gateway id: required")
	case cfg.Timeout <= 0:
		return errors.New("timeout: must be > 0")
	case cfg.MaxBytesPerSecond < 0:
		return errors.New("max_bytes_per_second: must be >= 0")
	case cfg.TLS != nil && (u.Scheme == "tcp" || u.Scheme == "mqtt"):
		return errors.New("tls: needs an ssl:// or mqtts:// broker")
	}
	return nil
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Published: s.published.Load(), Bytes: s.bytes.Load(), Invalid: s.invalid.Load(),
		Connects: s.connects.Load(), Connected: s.up.Load(), Throttled: time.Duration(s.throttled.Load())}
}

// message is one reading, encoded.
type message struct {
	topic   string
	payload []byte
}

// MessageBytes is what a message costs on the wire, as the rate cap counts it: the
// PUBLISH packet (fixed header of 2 to 5 bytes, topic length 2, topic, packet
// identifier 2, payload; MQTT 3.1.1 §3.3) and its PUBACK (4 bytes, §3.4), taken as 8
// bytes besides topic and payload. TCP/IP and TLS overhead come on top: tens of bytes
// per packet, less when several messages share a segment.
func MessageBytes(topic string, payload []byte) int { return len(topic) + len(payload) + 8 }

// Write publishes batch, one message per reading in batch order, and returns nil once
// the broker acknowledged every message. Readings that cannot be sent (Quality Bad,
// failing Validate) are skipped, and counted in Stats.Invalid when Write returns nil.
// Any failure (no connection, a lost connection, a PUBACK not received in Timeout, ctx
// done) closes the connection and returns an error: the forwarder keeps the batch and,
// after its back-off, calls Write with it again, which connects anew and sends the
// whole batch. Messages the broker had acknowledged are then published twice.
func (s *Sink) Write(ctx context.Context, batch []reading.Reading) error {
	msgs, skipped := s.encode(batch)
	c, err := s.connection(ctx)
	if err != nil {
		return err
	}
	// Publish everything before waiting: paho writes the messages to the connection in
	// the order of the Publish calls (one goroutine writes its outgoing queue), and the
	// broker forwards a client's messages in the order it received them (MQTT 3.1.1
	// §4.6), so the order holds while the PUBACKs come back pipelined.
	tokens := make([]mqtt.Token, 0, len(msgs))
	var size uint64
	for _, m := range msgs {
		n := MessageBytes(m.topic, m.payload)
		if err := s.wait(ctx, n); err != nil {
			s.drop(c)
			return err
		}
		size += uint64(n)
		t := c.publish(m.topic, m.payload)
		select {
		case <-t.Done(): // failed at once (not connected), or already acknowledged
			if err := t.Error(); err != nil {
				s.drop(c)
				return fmt.Errorf("publish %s (message %d of %d): %w", m.topic, len(tokens)+1, len(msgs), err)
			}
		default:
		}
		tokens = append(tokens, t)
	}
	for i, t := range tokens {
		if err := s.await(ctx, t); err != nil {
			s.drop(c)
			return fmt.Errorf("publish %s (message %d of %d): %w", msgs[i].topic, i+1, len(msgs), err)
		}
	}
	s.published.Add(uint64(len(msgs)))
	s.bytes.Add(size)
	s.skipped(skipped)
	return nil
}

// wait waits until the rate cap allows n more bytes. A message larger than a second's
// worth (the limiter's burst) takes its bytes a burst at a time.
func (s *Sink) wait(ctx context.Context, n int) error {
	if s.limit == nil {
		return nil
	}
	start := time.Now()
	defer func() { s.throttled.Add(int64(time.Since(start))) }()
	for n > 0 {
		k := min(n, s.limit.Burst())
		if err := s.limit.WaitN(ctx, k); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("rate cap: %w", err) // the wait would outlast ctx's deadline
		}
		n -= k
	}
	return nil
}

// await waits for the PUBACK of t, at most Timeout.
func (s *Sink) await(ctx context.Context, t mqtt.Token) error {
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error() // paho fails the tokens of a lost connection (clean session, no auto-reconnect)
	case <-timer.C:
		return fmt.Errorf("no PUBACK within %v", s.cfg.Timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// encode turns batch into messages, skipping readings that cannot be sent; bad is how
// many it skipped.
func (s *Sink) encode(batch []reading.Reading) (msgs []message, bad int) {
	msgs = make([]message, 0, len(batch))
	var buf []byte
	for _, r := range batch {
		if r.Quality == reading.Bad || r.Validate() != nil {
			bad++
			continue
		}
		buf = s.cfg.Topic.appendTopic(buf[:0], r, s.cfg.GatewayID)
		topic := string(buf)
		msgs = append(msgs, message{topic: topic, payload: Payload(r, s.cfg.GatewayID, s.cfg.Format)})
	}
	return msgs, bad
}

// skipped counts bad readings of a delivered batch as skipped, and warns (at most once
// per warnEvery). Only a Write that returns nil counts them: the forwarder retries a
// failed batch whole, and its readings are skipped once, when the cursor passes them.
func (s *Sink) skipped(bad int) {
	if bad == 0 {
		return
	}
	s.invalid.Add(uint64(bad))
	now := time.Now().UnixNano()
	if last := s.lastWarn.Load(); now-last >= int64(warnEvery) && s.lastWarn.CompareAndSwap(last, now) {
		s.log.Warn("readings not published: quality bad or invalid", "readings", bad)
	}
}

// jsonReading is the JSON payload of one reading.
type jsonReading struct {
	Gateway  string  `json:"gateway"`
	Site     string  `json:"site"`
	Device   string  `json:"device"`
	Quantity string  `json:"quantity"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Time     string  `json:"time"`
	Quality  string  `json:"quality"`
	Reason   string  `json:"reason,omitempty"` // the screening flag, when there is one
}

// Payload encodes r, measured on the box gatewayID, in format: for FormatJSON an object
//
//	{"gateway":"gw-7","site":"canal-east-3","device":"aq-1","quantity":"pm25","value":35,
//	 "unit":"ug/m3","time":"2026-03-01T08:00:00.123Z","quality":"good"}
//
// (time in RFC 3339 UTC with as many fractional digits as it has, quality "good" or
// "suspect"); for FormatLine influx.Line(r, gatewayID, time.Nanosecond), the same line
// the InfluxDB sink writes at nanosecond precision. r must be valid.
func Payload(r reading.Reading, gatewayID, format string) []byte {
	if format == FormatLine {
		return []byte(influx.Line(r, gatewayID, time.Nanosecond))
	}
	b, err := json.Marshal(jsonReading{Gateway: gatewayID, Site: r.Site, Device: r.Device, Quantity: r.Quantity,
		Value: r.Value, Unit: r.Unit, Time: r.Time.UTC().Format(time.RFC3339Nano), Quality: r.Quality.String(), Reason: r.Reason.String()})
	if err != nil { // only for a value Validate refuses (NaN, ±Inf)
		return nil
	}
	return b
}

// connection returns the open connection, connecting first if there is none.
func (s *Sink) connection(ctx context.Context) (conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.conn != nil && s.conn.connected() {
		return s.conn, nil
	}
	if s.conn != nil { // lost while idle (the broker restarted, a NAT timeout): connect anew now
		s.up.Store(false)
		s.conn.close()
		s.conn = nil
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.connects.Add(1)
	s.conn = c
	s.up.Store(true)
	return c, nil
}

// lost records that c's connection was lost. paho reports a loss from its own
// goroutine, after it failed the connection's tokens, so the report can come after
// Write returned, the forwarder backed off and a new connection is up: only a loss of
// the current connection marks the sink disconnected.
func (s *Sink) lost(c conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c {
		s.up.Store(false)
	}
}

// drop closes c after a failure, so that the next Write connects anew.
func (s *Sink) drop(c conn) {
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
		s.up.Store(false)
	}
	s.mu.Unlock()
	c.close()
}

// Close disconnects. Messages not yet acknowledged stay in the buffer. Safe to call twice.
func (s *Sink) Close() error {
	s.mu.Lock()
	c := s.conn
	s.conn, s.closed = nil, true
	s.up.Store(false)
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
	return nil
}

// explain adds a hint to a failed connect over TLS without a client certificate. paho
// flattens the TLS alert into text ("network Error : remote error: tls: certificate
// required"), and under TLS 1.3 the client finishes its handshake before the broker
// checks the certificate, so the refusal may also come as a reset or EOF on the
// CONNECT that follows.
func (s *Sink) explain(err error) error {
	if s.cfg.TLS == nil || len(s.cfg.TLS.Certificates) > 0 {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificate required"):
		return fmt.Errorf("%w (the broker requires a client certificate: set cert_file and key_file)", err)
	case strings.Contains(msg, "connection reset"), strings.Contains(msg, "EOF"), strings.Contains(msg, "bad certificate"):
		return fmt.Errorf("%w (no client certificate is configured: if the broker requires one, set cert_file and key_file)", err)
	}
	return err
}

// refused reports whether the broker turned the connection down for something only an
// operator can fix: CONNACK return codes 2 (identifier rejected), 4 (bad user name or
// password) and 5 (not authorised) (MQTT 3.1.1 §3.2.2.3), or a TLS alert that it wants
// a client certificate.
func refused(err error) bool {
	return errors.Is(err, packets.ErrorRefusedIDRejected) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) ||
		errors.Is(err, packets.ErrorRefusedNotAuthorised) || strings.Contains(err.Error(), "certificate required")
}

// persistentError is a refusal that retrying cannot cure: the forwarder retries it
// every auth_retry and raises envgate_sink_persistent_failure (gateway.Sink).
type persistentError struct{ error }

func (e persistentError) Unwrap() error    { return e.error }
func (e persistentError) Persistent() bool { return true }

// pahoConn is a paho client with one connection.
type pahoConn struct{ c mqtt.Client }

func (p pahoConn) publish(topic string, payload []byte) mqtt.Token {
	return p.c.Publish(topic, QoS, false, payload)
}

func (p pahoConn) connected() bool { return p.c.IsConnectionOpen() }

// close disconnects, waiting up to 250 ms for paho to send DISCONNECT.
func (p pahoConn) close() { p.c.Disconnect(250) }

// connect opens a new connection. The choices (docs/design.md, "MQTT uplink"):
//   - A fresh client per connection, no auto-reconnect: after a failure Write returns an
//     error and the forwarder backs off (retry_initial to retry_max, jittered), then
//     sends the batch again from the buffer. paho's own reconnect would resend the
//     stored messages of the old connection behind Write's back and complete their
//     tokens without a PUBACK; one retry loop, the forwarder's, is simpler to reason
//     about and shares the jittered first retry of every sink.
//   - A clean session: the box subscribes to nothing, and the only session state a
//     publisher has, its unacknowledged messages, is in the buffer already. A
//     persistent session would only make the broker keep state for every box of a fleet.
func (s *Sink) connect(ctx context.Context) (conn, error) {
	o := mqtt.NewClientOptions().
		AddBroker(s.cfg.Broker).
		SetClientID(s.cfg.ClientID).
		SetUsername(s.cfg.Username).
		SetPassword(s.cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1, no silent fallback to 3.1
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(s.cfg.KeepAlive).
		SetConnectTimeout(s.cfg.Timeout).
		// A half-open cellular connection must not block a publish forever.
		SetWriteTimeout(s.cfg.Timeout).
		SetOrderMatters(true).
		SetConnectionLostHandler(func(c mqtt.Client, err error) {
			s.lost(pahoConn{c})
			s.log.Warn("mqtt uplink connection lost", "err", err)
		})
	if s.cfg.TLS != nil {
		o.SetTLSConfig(s.cfg.TLS)
	}
	c := mqtt.NewClient(o)
	t := c.Connect()
	select {
	case <-t.Done():
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := t.Error(); err != nil {
		err = fmt.Errorf("connect to %s as %s: %w", s.cfg.Broker, s.cfg.ClientID, err)
		err = s.explain(err)
		if refused(err) {
			return nil, persistentError{err}
		}
		return nil, err
	}
	return pahoConn{c}, nil
}
