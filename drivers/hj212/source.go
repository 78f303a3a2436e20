package hj212src

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/envgate/envgate/drivers/serialport"
	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/reading"
)

// Defaults of Config, which config uses for hj212_listen (docs/config.md).
const (
	DefaultMaxConns = 16
	// DefaultIdleTimeout outlasts the longest real-time interval (RtdInterval ≤ 3600 s,
	// HJ 212-2017 CN 1062), so only a dead connection (a 4G modem that lost its link
	// without a FIN) is closed.
	DefaultIdleTimeout = 65 * time.Minute
	DefaultBaud        = 9600
	// writeTimeout bounds one answer's write: an analyzer that does not read its
	// answers must not hold the connection's goroutine.
	writeTimeout = 10 * time.Second
	// answerQueue is how many answers may wait for a connection's writer; an answer
	// that finds it full is dropped and counted (the analyzer sends the data again).
	answerQueue = 64
	// reopenDelay is the pause before a lost serial port is opened again.
	reopenDelay = 5 * time.Second
	// bindRetry is the pause before binding a TCP address in use again.
	bindRetry = time.Second
)

// Config is one HJ 212 listener: a TCP address or a serial port, and its stations.
type Config struct {
	Name        string
	Listen      string         // TCP address ("0.0.0.0:9212"); or
	Serial      string         // serial device (/dev/ttyUSB0)
	Baud        int            // serial only; 0 means DefaultBaud
	Location    *time.Location // zone of DataTime; nil means reading.ChinaStandardTime (HJ 212's Beijing time)
	Password    string         // "" accepts any PW
	Stations    []Station
	MaxConns    int           // TCP connections served at once; 0 means DefaultMaxConns
	IdleTimeout time.Duration // a connection silent this long is closed; 0 means DefaultIdleTimeout
}

// OpenFunc opens a serial port at baud (cmd passes serialport.Open; tests a pty).
type OpenFunc func(path string, baud int) (io.ReadWriteCloser, error)

// Stats are a source's counters since it started.
type Stats struct {
	Connections uint64            // TCP connections accepted (serial: port opens)
	Refused     uint64            // connections closed at once: MaxConns were being served
	Accepted    uint64            // packets taken: readings handed to the pipeline, or nothing to store
	Rejected    map[string]uint64 // packets not taken, by Reason*
	Answered    uint64            // answers written (9014 and 9011)
	Unanswered  uint64            // answers dropped: a full queue, a failed write, a batch not durable
	Readings    uint64            // readings handed to the pipeline
	Skipped     uint64            // factor values that gave no reading (unmapped, no number, out of range)
	Flags       map[string]uint64 // readings marked suspect, by their data flag letter (T, F, M, ...)
}

// Source is an HJ 212 listener. Create it with New, then call Run once; Run owns the
// listener or port and closes it before it returns.
type Source struct {
	cfg      Config
	log      *slog.Logger
	stations map[string]Station
	open     OpenFunc
	now      func() time.Time
	conns    chan struct{} // one token per connection served

	mu    sync.Mutex
	stats Stats
	ln    net.Listener // set by Run
}

// New returns the source; it opens nothing (envgate check builds sources too). open is
// used for a serial port; now is the gateway's clock (zero: not plausible). New does
// not validate cfg: config owns the rules and reports them with key paths (exactly one
// of listen and serial, unique MNs, ranges). It keeps only what the source relies on: a
// serial port needs open, and a zero MaxConns, IdleTimeout or Baud, a nil Location, get
// the defaults above (the ones config fills in) and reading.ChinaStandardTime. If
// Listen is set Serial is not used; of two stations with one MN the last is kept.
func New(cfg Config, open OpenFunc, now func() time.Time, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Listen == "" && open == nil {
		return nil, errors.New("hj212: a serial port needs an open function")
	}
	if cfg.Location == nil {
		cfg.Location = reading.ChinaStandardTime
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Baud <= 0 {
		cfg.Baud = DefaultBaud
	}
	s := &Source{cfg: cfg, log: log, open: open, now: now, stations: map[string]Station{},
		conns: make(chan struct{}, cfg.MaxConns)}
	s.stats.Rejected = map[string]uint64{}
	s.stats.Flags = map[string]uint64{}
	for _, st := range cfg.Stations {
		s.stations[st.MN] = st
	}
	return s, nil
}

// Name returns the listener's name.
func (s *Source) Name() string { return s.cfg.Name }

// Addr returns the TCP address listened on: nil for a serial port, and until Run has
// bound it.
func (s *Source) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// listen binds the TCP address, trying again every bindRetry while it is in use (a
// reload's previous generation may still hold it for a moment); it logs the first
// failure and returns nil once ctx is done.
func (s *Source) listen(ctx context.Context) net.Listener {
	logged := false
	for {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err == nil {
			s.mu.Lock()
			s.ln = ln
			s.mu.Unlock()
			if logged {
				s.log.Info("hj212 listening", "listen", s.cfg.Listen)
			}
			return ln
		}
		if !logged {
			s.log.Error("hj212 cannot listen; retrying", "listen", s.cfg.Listen, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(bindRetry):
		}
	}
}

// Stats returns a copy of the counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Rejected = maps.Clone(s.stats.Rejected)
	st.Flags = maps.Clone(s.stats.Flags)
	return st
}

func (s *Source) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Run serves connections (or the serial port) until ctx is done, then closes them and
// returns once every connection's goroutine has. It never closes out.
func (s *Source) Run(ctx context.Context, out chan<- reading.Batch) error {
	if s.cfg.Listen == "" {
		return s.runSerial(ctx, out)
	}
	ln := s.listen(ctx)
	if ln == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn("hj212 accept failed", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case s.conns <- struct{}{}:
		default:
			s.count(func(st *Stats) { st.Refused++ })
			s.log.Warn("hj212 connection refused: too many", "peer", c.RemoteAddr().String(), "max_conns", s.cfg.MaxConns)
			c.Close()
			continue
		}
		s.count(func(st *Stats) { st.Connections++ })
		wg.Go(func() {
			defer func() { <-s.conns }()
			s.serve(ctx, c, c.RemoteAddr().String(), out)
		})
	}
}

// runSerial reads the serial port, opening it again after a pause when it is lost.
func (s *Source) runSerial(ctx context.Context, out chan<- reading.Batch) error {
	up := true
	for ctx.Err() == nil {
		p, err := s.open(s.cfg.Serial, s.cfg.Baud)
		if err != nil {
			if up {
				s.log.Warn("hj212 serial port down", "port", s.cfg.Serial, "err", err)
				up = false
			}
		} else {
			if !up {
				s.log.Info("hj212 serial port up", "port", s.cfg.Serial)
			}
			up = true
			s.count(func(st *Stats) { st.Connections++ })
			s.serve(ctx, p, s.cfg.Serial, out)
		}
		select {
		case <-ctx.Done():
		case <-time.After(reopenDelay):
		}
	}
	return nil
}

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// serve reads packets from one connection until it ends, ctx is done or it is idle
// for IdleTimeout. Answers go through a writer goroutine, because the pipeline calls
// Durable from its writer, which must not block on a slow peer.
func (s *Source) serve(ctx context.Context, c io.ReadWriteCloser, peer string, out chan<- reading.Batch) {
	log := s.log.With("peer", peer)
	connCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(connCtx, func() { c.Close() })
	answers := make(chan []byte, answerQueue)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		stop()
		c.Close()
	}()
	dl, _ := c.(deadliner)
	wg.Go(func() {
		for {
			select {
			case <-connCtx.Done():
				return
			case b := <-answers:
				if dl != nil {
					dl.SetWriteDeadline(time.Now().Add(writeTimeout))
				}
				if _, err := c.Write(b); err != nil {
					s.count(func(st *Stats) { st.Unanswered++ })
					log.Debug("hj212 answer not sent", "err", err)
					continue
				}
				s.count(func(st *Stats) { st.Answered++ })
			}
		}
	})
	answer := func(b []byte) {
		select {
		case answers <- b:
		default:
			s.count(func(st *Stats) { st.Unanswered++ })
		}
	}

	log.Debug("hj212 connection open")
	r := hj212.NewReader(c)
	for {
		if dl != nil {
			dl.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		p, _, err := r.Next()
		var fe *hj212.FrameError
		switch {
		case errors.As(err, &fe):
			s.reject(log, fe, answer)
		case err != nil:
			if ctx.Err() == nil {
				log.Debug("hj212 connection closed", "err", err)
			}
			return
		default:
			if !s.handle(ctx, log, p, out, answer) {
				return
			}
		}
	}
}

// reject counts a packet that failed its frame checks and, for a CRC or length
// error whose QN and MN can be read, answers CN 9011 with QnRtn 9 (CRC error).
func (s *Source) reject(log *slog.Logger, fe *hj212.FrameError, answer func([]byte)) {
	var ce *hj212.CRCError
	var le *hj212.LengthError
	reason := ReasonField
	switch {
	case errors.As(fe.Err, &ce):
		reason = ReasonCRC
	case errors.As(fe.Err, &le):
		reason = ReasonLength
	case len(fe.Raw) < 2 || string(fe.Raw[:2]) != "##":
		reason = ReasonGarbage
	}
	s.count(func(st *Stats) { st.Rejected[reason]++ })
	log.Warn("hj212 packet rejected", "reason", reason, "err", fe)
	if reason != ReasonCRC && reason != ReasonLength {
		return
	}
	if p, ok := hj212.BadFrameHeader(fe.Err); ok {
		s.answer9011(p.QN, p.PW, p.MN, hj212.QnBadCRC, answer)
	}
}

func (s *Source) answer9011(qn, pw, mn, rtn string, answer func([]byte)) {
	b, err := hj212.Encode(hj212.Packet{QN: qn, ST: hj212.STInteraction, CN: hj212.CNRequestAnswer, PW: pw, MN: mn,
		Flag: hj212.Version2017, CP: "QnRtn=" + rtn})
	if err == nil {
		answer(b)
	}
}

// handle takes one good packet; it returns false when ctx ended while it waited to
// hand readings over.
func (s *Source) handle(ctx context.Context, log *slog.Logger, p hj212.Packet, out chan<- reading.Batch, answer func([]byte)) bool {
	log = log.With("mn", p.MN, "qn", p.QN, "cn", p.CN)
	st, ok := s.stations[p.MN]
	if !ok {
		s.count(func(st *Stats) { st.Rejected[ReasonUnknownMN]++ })
		log.Warn("hj212 packet from an unknown station")
		if p.QN != "" {
			s.answer9011(p.QN, p.PW, p.MN, hj212.QnBadMN, answer)
		}
		return true
	}
	if s.cfg.Password != "" && p.PW != s.cfg.Password {
		s.count(func(st *Stats) { st.Rejected[ReasonPassword]++ })
		log.Warn("hj212 packet with a wrong password")
		if p.QN != "" {
			s.answer9011(p.QN, p.PW, p.MN, hj212.QnBadPW, answer)
		}
		return true
	}
	var now time.Time
	if s.now != nil {
		now = s.now()
	}
	res, err := Convert(p, st, s.cfg.Location, now)
	if err != nil {
		var ce *ConvertError
		reason := ReasonField
		if errors.As(err, &ce) {
			reason = ce.Reason
		}
		s.count(func(st *Stats) { st.Rejected[reason]++ })
		log.Warn("hj212 packet rejected", "reason", reason, "err", err)
		return true
	}
	for _, f := range res.Flagged {
		log.Debug("hj212 value flagged", "quantity", f.Quantity, "flag", f.Flag)
	}
	for _, sk := range res.Skipped {
		log.Debug("hj212 value skipped", "code", sk.Code, "reason", sk.Reason)
	}
	s.count(func(c *Stats) {
		c.Accepted++
		c.Readings += uint64(len(res.Readings))
		c.Skipped += uint64(len(res.Skipped))
		for _, f := range res.Flagged {
			c.Flags[f.Flag]++
		}
	})
	var ack []byte
	if p.Ack() {
		if ack, err = hj212.DataAnswer(p); err != nil {
			log.Warn("hj212 cannot answer", "err", err)
		}
	}
	if len(res.Readings) == 0 {
		if ack != nil {
			answer(ack)
		}
		return true
	}
	b := reading.Batch{Readings: res.Readings}
	if ack != nil {
		// The analyzer keeps an upload it asked an answer for and sends it again when
		// none comes (HJ 212-2017: timeout and retries), so the readings have another
		// copy: answer only once they are durable (docs/design.md §5).
		b.Redeliverable = true
		b.Durable = func(err error) {
			if err != nil {
				s.count(func(st *Stats) { st.Unanswered++ })
				return
			}
			answer(ack)
		}
	}
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}

// OpenSerial opens a serial port at baud, 8N1, through drivers/serialport (errors say
// what to do: join dialout, free the port, plug the adapter in).
func OpenSerial(path string, baud int) (io.ReadWriteCloser, error) {
	return serialport.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
}
