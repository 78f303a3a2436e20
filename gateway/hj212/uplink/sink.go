// Package uplink is the HJ 212-2017 uplink sink: it sends the readings of the
// configured stations to one platform over one TCP connection, as real-time (CN 2011),
// minute (2051), hourly (2061) and daily (2031) records, waits for the platform's data
// answer (9014) of each packet that asks for one, and answers the platform's commands
// (get time, real-time interval, history requests). docs/hj212.md, "Uplink", is its
// description; gateway/hj212 is the codec it uses.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// Config is one platform: its address, its stations and the delivery policy.
type Config struct {
	Address       string // host:port
	Stations      []Station
	Location      *time.Location // QN, DataTime, SystemTime are local time here; nil: reading.ChinaStandardTime
	AnswerTimeout time.Duration  // wait for a 9014 (and a dial); 0: DefaultAnswerTimeout
	Retries       int            // re-sends of an unanswered packet (same QN); 0: none (config's default: DefaultRetries)
	Ack           bool           // ask for answers (Flag bit A)
	Heartbeat     time.Duration  // an upload of the site time (CN 1011) when nothing was sent for this long; 0: none
	RtdInterval   time.Duration  // real-time data: at most one packet per station per interval; 0: DefaultRtdInterval
	SuspectFlag   string         // data flag of a suspect reading; "": DefaultSuspectFlag
	// Flag, if set, gives the data flag of a device at an instant when it has one
	// (maintenance M, calibration C, from a maintenance log); it wins over quality.
	Flag func(device string, t time.Time) (string, bool)
	// History, if set, calls each with the readings the buffer still holds whose time
	// is in [from, to], in buffer order, for the platform's history requests.
	History func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error
	// Now is the clock of QN and SystemTime; default the gateway's clock.
	Now func() time.Time
}

// Station is one monitoring station (one MN) of the platform.
type Station struct {
	ST       string   // 21 surface water, 22 air, 23 acoustic environment
	MN       string   // the station's device number
	PW       string   // its access password
	Site     string   // readings of this site belong to it, unless Devices is set
	Devices  []string // readings of these devices belong to it
	Realtime bool     // send real-time data (CN 2011)
	Records  []string // RecordMinute, RecordHourly, RecordDaily
	// Factors overrides the default code, decimals or scale of a quantity (by its full
	// name, "pm25_1h", or its base, "pm25").
	Factors map[string]FactorOverride

	records map[string]bool // CN → sent
}

// FactorOverride changes how a quantity is sent. Decimals < 0 keeps the default.
type FactorOverride struct {
	Code     string
	Decimals int
	Scale    float64 // the value sent is value × Scale; 0 means 1
}

// Defaults of Config, which config uses for an hj212 sink (docs/config.md).
const (
	DefaultAnswerTimeout = 10 * time.Second // HJ 212-2017's default answer timeout
	DefaultRetries       = 3                // and its default retry count
	DefaultSuspectFlag   = hj212.DataFault  // D: a suspect reading is sent as a fault
	DefaultRtdInterval   = 60 * time.Second
	MinRtdInterval       = 30 * time.Second   // HJ 212-2017: RtdInterval 30–3600 s
	MaxRtdInterval       = 3600 * time.Second //
)

// Stats are the sink's counters.
type Stats struct {
	Sent      uint64 // data packets written to the connection, re-sends included
	Answered  uint64 // data packets the platform answered (CN 9014)
	Resent    uint64 // re-sends after an answer timeout or a lost connection
	Timeouts  uint64 // answer timeouts
	Commands  uint64 // platform commands received
	Refused   uint64 // commands answered with a QnRtn other than 1 or an ExeRtn other than 1
	Skipped   uint64 // readings of a station that cannot be sent (NaN, quality bad, too long)
	Connects  uint64
	Connected bool
}

// Sink is the uplink to one platform.
type Sink struct {
	cfg Config
	log *slog.Logger

	qmu sync.Mutex
	qn  qnSource

	mu       sync.Mutex         // one Write at a time; guards the fields below
	answered map[string]bool    // content keys answered since the last Write that returned nil
	pending  map[string]string  // record key → the QN of a record not all of whose packets were answered
	rtdSent  []map[string]int64 // per station: factor code → the last real-time bucket it was sent in

	// The hooks of Config, set later by SetFlag and SetHistory.
	flagHook    atomic.Pointer[flagFunc]
	historyHook atomic.Pointer[historyFunc]

	cmu  sync.Mutex // guards conn, closed, rtd
	conn *conn
	rtd  []time.Duration // per station: the real-time interval (CN 1062 changes it)
	done bool

	sent, answeredN, resent, timeouts, commands, refused, skipped, connects atomic.Uint64
}

// New returns the sink; it connects on the first Write. It does not validate cfg:
// config owns the rules and reports them with key paths (envgate check runs the same
// build as run). New keeps only what the sink relies on: a zero AnswerTimeout,
// RtdInterval or SuspectFlag, a nil Location or Now, would break it, so they get the
// defaults above (the ones config fills in), reading.ChinaStandardTime and the
// gateway's clock; an unknown record name sends nothing. The error is always nil.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if cfg.Location == nil {
		cfg.Location = reading.ChinaStandardTime
	}
	if cfg.AnswerTimeout <= 0 {
		cfg.AnswerTimeout = DefaultAnswerTimeout
	}
	if cfg.RtdInterval <= 0 {
		cfg.RtdInterval = DefaultRtdInterval
	}
	if cfg.SuspectFlag == "" {
		cfg.SuspectFlag = DefaultSuspectFlag
	}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	cfg.Stations = slices.Clone(cfg.Stations)
	flag, history := cfg.Flag, cfg.History
	cfg.Flag, cfg.History = nil, nil // the hooks are read from flagHook and historyHook only
	s := &Sink{cfg: cfg, log: log, answered: map[string]bool{}, pending: map[string]string{}}
	cns := map[string]string{RecordMinute: hj212.CNMinute, RecordHourly: hj212.CNHourly, RecordDaily: hj212.CNDaily}
	for i := range cfg.Stations {
		st := &s.cfg.Stations[i]
		st.records = map[string]bool{}
		for _, r := range st.Records {
			if cn, ok := cns[r]; ok {
				st.records[cn] = true
			}
		}
		s.rtdSent = append(s.rtdSent, map[string]int64{})
		s.rtd = append(s.rtd, cfg.RtdInterval)
	}
	s.SetFlag(flag)
	s.SetHistory(history)
	return s, nil
}

type (
	flagFunc    = func(device string, t time.Time) (string, bool)
	historyFunc = func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error
)

// Stats returns the counters; it does not wait for the connection.
func (s *Sink) Stats() Stats {
	s.cmu.Lock()
	up := s.conn != nil && !s.conn.isDone()
	s.cmu.Unlock()
	return Stats{Sent: s.sent.Load(), Answered: s.answeredN.Load(), Resent: s.resent.Load(), Timeouts: s.timeouts.Load(),
		Commands: s.commands.Load(), Refused: s.refused.Load(), Skipped: s.skipped.Load(), Connects: s.connects.Load(), Connected: up}
}

// Probe reports whether the platform accepts connections: a TCP connection, closed at
// once (gateway.Prober).
func (s *Sink) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.AnswerTimeout, 5*time.Second))
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return err
	}
	return c.Close()
}

// SetHistory sets Config.History: the buffer it reads is opened after the sink is built.
// It is safe to call at any time; a history request under way keeps the hook it began with.
func (s *Sink) SetHistory(h func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error) {
	if h == nil {
		s.historyHook.Store(nil)
		return
	}
	s.historyHook.Store(&h)
}

// SetFlag sets Config.Flag: the maintenance log it reads is opened after the sink is
// built (envgate check builds sinks too, and opens no state file). It is safe to call
// at any time, also while a Write or a history request runs.
func (s *Sink) SetFlag(f func(device string, t time.Time) (string, bool)) {
	if f == nil {
		s.flagHook.Store(nil)
		return
	}
	s.flagHook.Store(&f)
}

// Close closes the connection. It is safe to call twice.
func (s *Sink) Close() error {
	s.cmu.Lock()
	c := s.conn
	s.conn, s.done = nil, true
	s.cmu.Unlock()
	if c != nil {
		c.close()
	}
	return nil
}

// Write sends the records of batch, one packet after another, and returns nil once
// every packet was answered (or written, when answers are off). A packet not answered
// within AnswerTimeout is sent again with the same QN, up to Retries times; a lost
// connection is dialled again and the packet re-sent, within the same tries. When the
// tries run out, Write closes the connection and returns an error: the forwarder keeps
// the batch and calls Write again after its back-off, the packets the platform had
// answered are not sent again (same content, any QN), and the rest of a record the
// platform had not answered in full go under the record's first QN. Readings that belong to no
// station or whose quantity has no code are set aside without a word (they are not
// this platform's); readings that cannot be sent are counted in Stats.Skipped. With a
// Heartbeat, a write without packets dials a lost connection again.
func (s *Sink) Write(ctx context.Context, batch []reading.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmu.Lock()
	rtd := slices.Clone(s.rtd)
	s.cmu.Unlock()
	recs, skipped := s.build(batch, s.rtdSent, rtd, -1)
	rtdSent := make([]map[string]int64, len(s.rtdSent))
	for i, m := range s.rtdSent {
		rtdSent[i] = maps.Clone(m)
	}
	for _, rec := range recs {
		// A record sent before and not all answered goes again under its QN: the
		// platform joins the parts of a split record by QN.
		rkey := s.recordKey(rec)
		qn, ok := s.pending[rkey]
		if !ok {
			qn = s.nextQN()
		}
		pkts, err := s.packets(rec, qn)
		if err != nil {
			s.log.Warn("record not sent", "err", err, "cn", rec.cn, "mn", s.cfg.Stations[rec.station].MN)
			skipped += len(rec.codes)
			continue
		}
		for _, p := range pkts {
			key := contentKey(p)
			if s.answered[key] {
				continue
			}
			if err := s.deliver(ctx, p); err != nil {
				s.pending[rkey] = qn
				return err
			}
			s.answered[key] = true
		}
		delete(s.pending, rkey)
		if rec.cn == hj212.CNRealtime {
			for _, code := range rec.codes {
				if b, ok := rtdSent[rec.station][code]; !ok || rec.bucket > b {
					rtdSent[rec.station][code] = rec.bucket
				}
			}
		}
	}
	s.rtdSent = rtdSent
	clear(s.answered)
	clear(s.pending)
	if len(recs) == 0 && s.cfg.Heartbeat > 0 {
		// With a heartbeat the connection is meant to stay up for the platform's
		// commands: a write with nothing to send re-dials a lost one, and a failure
		// is no reason to keep the batch.
		if _, err := s.connection(ctx); err != nil {
			s.log.Debug("platform not reachable", "err", err)
		}
	}
	s.skipped.Add(uint64(skipped))
	return nil
}

// deliver sends p and waits for its answer, re-sending on timeout or a lost
// connection up to Retries times.
func (s *Sink) deliver(ctx context.Context, p hj212.Packet) error {
	frame, err := hj212.Encode(p)
	if err != nil {
		return fmt.Errorf("encode CN %s QN %s: %w", p.CN, p.QN, err) // a bug: Split checked it
	}
	var last error
	for try := 0; try <= s.cfg.Retries; try++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := s.connection(ctx)
		if err != nil {
			return err
		}
		if try > 0 {
			s.resent.Add(1)
		}
		var answer <-chan struct{}
		if s.cfg.Ack {
			answer = c.expect(p.QN, p.MN)
		}
		if err := c.write(frame); err != nil {
			c.forget(p.QN, p.MN)
			s.drop(c)
			last = fmt.Errorf("send CN %s QN %s: %w", p.CN, p.QN, err)
			continue
		}
		s.sent.Add(1)
		if !s.cfg.Ack {
			return nil
		}
		t := time.NewTimer(s.cfg.AnswerTimeout)
		select {
		case <-answer:
			t.Stop()
			s.answeredN.Add(1)
			return nil
		case <-t.C:
			// Still waiting: an answer to this send, late, answers the re-send too.
			s.timeouts.Add(1)
			last = fmt.Errorf("CN %s QN %s MN %s: no answer (CN 9014) within %v", p.CN, p.QN, p.MN, s.cfg.AnswerTimeout)
			continue
		case <-c.doneCh:
			t.Stop()
			last = fmt.Errorf("CN %s QN %s: connection lost before the answer: %w", p.CN, p.QN, c.err())
		case <-ctx.Done():
			t.Stop()
			c.forget(p.QN, p.MN)
			return ctx.Err()
		}
		c.forget(p.QN, p.MN)
	}
	if c := s.current(); c != nil {
		c.forget(p.QN, p.MN)
		s.drop(c)
	}
	return fmt.Errorf("after %d tries: %w", s.cfg.Retries+1, last)
}

// current returns the open connection, if any.
func (s *Sink) current() *conn {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.conn
}

// connection returns the open connection, dialling one if there is none.
func (s *Sink) connection(ctx context.Context) (*conn, error) {
	s.cmu.Lock()
	if s.done {
		s.cmu.Unlock()
		return nil, errors.New("sink closed")
	}
	if c := s.conn; c != nil && !c.isDone() {
		s.cmu.Unlock()
		return c, nil
	}
	s.conn = nil
	s.cmu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, s.cfg.AnswerTimeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", s.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to the platform: %w", err)
	}
	c := newConn(nc)
	s.cmu.Lock()
	if s.done {
		s.cmu.Unlock()
		c.close()
		return nil, errors.New("sink closed")
	}
	s.conn = c
	s.cmu.Unlock()
	s.connects.Add(1)
	s.log.Info("platform connected", "address", s.cfg.Address)
	go s.readLoop(c)
	if s.cfg.Heartbeat > 0 {
		go s.heartbeat(c)
	}
	return c, nil
}

// drop closes c and forgets it, so that the next packet dials anew.
func (s *Sink) drop(c *conn) {
	s.cmu.Lock()
	if s.conn == c {
		s.conn = nil
	}
	s.cmu.Unlock()
	if !c.isDone() {
		s.log.Info("platform connection closed", "address", s.cfg.Address)
	}
	c.close()
}

// heartbeat uploads the site time (CN 1011, no answer asked) of the first station when
// nothing was written to c for Heartbeat, until c closes.
func (s *Sink) heartbeat(c *conn) {
	t := time.NewTicker(max(s.cfg.Heartbeat/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.doneCh:
			return
		case <-t.C:
		}
		if time.Since(c.lastWrite()) < s.cfg.Heartbeat {
			continue
		}
		st := s.cfg.Stations[0]
		qn := s.nextQN()
		// A failure closes c, which ends the loop.
		_ = s.sendPacket(c, hj212.Packet{QN: qn, ST: st.ST, CN: hj212.CNGetTime, PW: st.PW, MN: st.MN, Flag: hj212.Version2017,
			CP: hj212.Group(hj212.Field{Name: "SystemTime", Value: s.cfg.Now().In(s.cfg.Location).Format(hj212.TimeLayout)})})
	}
}

// sendPacket encodes and writes p on c; a failure to write closes c.
func (s *Sink) sendPacket(c *conn, p hj212.Packet) error {
	frame, err := hj212.Encode(p)
	if err != nil {
		return fmt.Errorf("encode CN %s QN %s: %w", p.CN, p.QN, err)
	}
	if err := c.write(frame); err != nil {
		s.drop(c)
		return fmt.Errorf("send CN %s QN %s: %w", p.CN, p.QN, err)
	}
	return nil
}

// nextQN returns a new QN.
func (s *Sink) nextQN() string {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.qn.next(s.cfg.Now(), s.cfg.Location)
}
