package pm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// fakeSensor plays a PMS5003 or an SDS011 on the far end of a port: it answers the
// commands it is fed (docs/engineering-notes.md §3) and, in active mode and awake, streams frames.
type fakeSensor struct {
	model Model

	mu     sync.Mutex
	write  func([]byte) error // sends bytes to the host
	awake  bool
	active bool
	mute   bool      // ignores read and query commands
	cmds   []sentCmd // every command received
	in     []byte    // command bytes not parsed yet
	next   int       // frames sent so far
	frame  func(i int) []byte
	// emit, if set, sends frame i its own way (garbage, split writes).
	emit func(write func([]byte) error, i int) error
}

// sentCmd is a command the fake received, and when.
type sentCmd struct {
	at time.Time
	b  []byte
}

func newFakeSensor(model Model, frame func(i int) []byte) *fakeSensor {
	return &fakeSensor{model: model, awake: true, active: true, frame: frame}
}

// pmsFrame returns a PMS frame whose atmospheric values are v, v+1, v+2 and CF=1 values
// v+100, v+101, v+102.
func pmsFrame(v int) []byte {
	f := float64(v)
	return encodePMS(Frame{PM1: f, PM25: f + 1, PM10: f + 2, PM1CF1: f + 100, PM25CF1: f + 101, PM10CF1: f + 102})
}

// feed takes bytes the host wrote and handles every complete command in them.
func (s *fakeSensor) feed(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.in = append(s.in, b...)
	head, size := []byte{pmsStart1, pmsStart2}, 7
	if s.model == SDS011 {
		head, size = []byte{sdsHead, sdsCmdHead}, sdsCmdLen
	}
	for {
		i := bytes.Index(s.in, head)
		if i < 0 || len(s.in)-i < size {
			return
		}
		cmd := bytes.Clone(s.in[i : i+size])
		s.in = s.in[i+size:]
		s.cmds = append(s.cmds, sentCmd{time.Now(), cmd})
		s.handle(cmd)
	}
}

// handle answers one command. s.mu is held.
func (s *fakeSensor) handle(cmd []byte) {
	if s.model == SDS011 {
		d3 := cmd[4]
		switch cmd[2] {
		case SDSCmdQuery:
			if s.awake && !s.mute {
				s.sendFrame()
			}
			return
		case SDSCmdReportMode:
			s.active = d3 == 0
		case SDSCmdSleepWork:
			s.awake = d3 == 1
		}
		reply := []byte{sdsHead, sdsReply, cmd[2], cmd[3], d3, 0, 0xA1, 0x60}
		s.send(append(reply, sum8(reply[2:]), sdsTail))
		return
	}
	data := cmd[4]
	switch cmd[2] {
	case PMSCmdRead:
		if s.awake && !s.mute {
			s.sendFrame()
		}
		return
	case PMSCmdMode:
		s.active = data == 1
	case PMSCmdSleep:
		s.awake = data == 1
	}
	ack := []byte{pmsStart1, pmsStart2, 0, pmsReplyField, cmd[2], data}
	sum := sum16(ack)
	s.send(append(ack, byte(sum>>8), byte(sum)))
}

func (s *fakeSensor) send(b []byte) {
	if s.write != nil {
		_ = s.write(b) // a closed port: the host sees that on its side
	}
}

// sendFrame sends the next frame. s.mu is held.
func (s *fakeSensor) sendFrame() error {
	s.next++
	if s.write == nil {
		return nil
	}
	if s.emit != nil {
		return s.emit(s.write, s.next)
	}
	return s.write(s.frame(s.next))
}

// stream sends a frame every period while the sensor is awake and in active mode, until
// done is closed. Write errors (the port is unplugged) are ignored: the sensor keeps
// going and is heard again once its port is back.
func (s *fakeSensor) stream(period time.Duration, done <-chan struct{}) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.awake && s.active && !s.mute {
			_ = s.sendFrame()
		}
		s.mu.Unlock()
	}
}

// fallAsleep puts the sensor to sleep behind the host's back, as a missed wake-up
// command or a glitch on the SET pin does: it sends nothing until it is woken.
func (s *fakeSensor) fallAsleep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awake = false
}

func (s *fakeSensor) setMute(m bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mute = m
}

// commands returns the commands received so far.
func (s *fakeSensor) commands() []sentCmd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sentCmd(nil), s.cmds...)
}

// memPort is an in-memory Port for synctest: the fake sensor pushes bytes, Read waits
// for them up to its timeout, and unplug makes every call fail like a vanished adapter.
type memPort struct {
	mu      sync.Mutex
	pending []byte
	timeout time.Duration
	closed  bool
	notify  chan struct{} // has a value when pending may have grown
	gone    chan struct{} // closed by unplug
	onWrite func([]byte)
}

func newMemPort() *memPort {
	return &memPort{notify: make(chan struct{}, 1), gone: make(chan struct{})}
}

var errGone = syscall.EIO // what Linux returns on a pty whose other end closed

func (p *memPort) push(b []byte) error {
	select {
	case <-p.gone:
		return errGone
	default:
	}
	p.mu.Lock()
	p.pending = append(p.pending, b...)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return nil
}

func (p *memPort) take(b []byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n
}

func (p *memPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	closed, timeout := p.closed, p.timeout
	p.mu.Unlock()
	if closed {
		return 0, errors.New("port closed")
	}
	if n := p.take(b); n > 0 {
		return n, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.gone:
		return 0, errGone
	case <-p.notify:
		return p.take(b), nil
	case <-t.C:
		return 0, nil
	}
}

func (p *memPort) Write(b []byte) (int, error) {
	select {
	case <-p.gone:
		return 0, errGone
	default:
	}
	if p.onWrite != nil {
		p.onWrite(bytes.Clone(b))
	}
	return len(b), nil
}

func (p *memPort) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timeout = d
	return nil
}

func (p *memPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("closed twice")
	}
	p.closed = true
	return nil
}

func (p *memPort) unplug() { close(p.gone) }

// attach connects a fake sensor to a memPort.
func attach(s *fakeSensor, p *memPort) {
	s.mu.Lock()
	s.write = p.push
	s.in = nil
	s.mu.Unlock()
	p.onWrite = s.feed
}

// obsEvent is one call of Run's obs function.
type obsEvent struct {
	at  time.Time
	d   time.Duration
	err error
}

// recorder collects obs calls and batches; safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	obs     []obsEvent
	batches []reading.Batch
	changed chan struct{} // has a value after each new event
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) observe(device string, d time.Duration, err error) {
	r.mu.Lock()
	r.obs = append(r.obs, obsEvent{time.Now(), d, err})
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// collect receives batches from out until done is closed.
func (r *recorder) collect(out <-chan reading.Batch, done <-chan struct{}) {
	for {
		select {
		case b := <-out:
			r.mu.Lock()
			r.batches = append(r.batches, b)
			r.mu.Unlock()
			r.poke()
		case <-done:
			return
		}
	}
}

func (r *recorder) snapshot() ([]obsEvent, []reading.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]obsEvent(nil), r.obs...), append([]reading.Batch(nil), r.batches...)
}

// logRecorder is a slog.Handler that keeps every record, Debug included.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRecord
}

// logRecord is one log line: its level, message and attributes as text.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

type logHandler struct {
	rec   *logRecorder
	attrs []slog.Attr
}

func (h logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.rec.mu.Lock()
	h.rec.recs = append(h.rec.recs, rec)
	h.rec.mu.Unlock()
	return nil
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.rec, append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h logHandler) WithGroup(string) slog.Handler { return h }

func (l *logRecorder) logger() *slog.Logger { return slog.New(logHandler{rec: l}) }

// lines returns the records with message msg.
func (l *logRecorder) lines(msg string) []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logRecord
	for _, r := range l.recs {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// String lists the messages at Info and above, for failure messages.
func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	for _, r := range l.recs {
		if r.level >= slog.LevelInfo {
			fmt.Fprintf(&b, "%s %s err=%q\n", r.level, r.msg, r.attrs["err"])
		}
	}
	return b.String()
}
