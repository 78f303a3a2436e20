package uplink

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
)

// conn is one TCP connection to the platform: packets written one at a time, a read
// loop (Sink.readLoop) that hands each 9014 to the packet waiting for it.
type conn struct {
	nc     net.Conn
	doneCh chan struct{}

	wmu  sync.Mutex // one packet written at a time
	last time.Time  // last write; guarded by wmu

	mu      sync.Mutex
	waiters map[string]chan struct{} // QN and MN → closed when answered
	cause   error
	once    sync.Once
}

func newConn(nc net.Conn) *conn {
	return &conn{nc: nc, doneCh: make(chan struct{}), waiters: map[string]chan struct{}{}, last: time.Now()}
}

// writeTimeout bounds one write: a platform that stops reading must not hold a Write.
const writeTimeout = 10 * time.Second

func (c *conn) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(frame)
	c.last = time.Now()
	if err != nil {
		c.fail(err)
	}
	return err
}

func (c *conn) lastWrite() time.Time {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.last
}

// expect registers a wait for the answer to the packet qn of mn.
func (c *conn) expect(qn, mn string) <-chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	c.waiters[qn+"|"+mn] = ch
	c.mu.Unlock()
	return ch
}

func (c *conn) forget(qn, mn string) {
	c.mu.Lock()
	delete(c.waiters, qn+"|"+mn)
	c.mu.Unlock()
}

// answer reports an answer to qn of mn; false if no packet waits for it.
func (c *conn) answer(qn, mn string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.waiters[qn+"|"+mn]
	if ok {
		close(ch)
		delete(c.waiters, qn+"|"+mn)
	}
	return ok
}

func (c *conn) fail(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.cause = err
		c.mu.Unlock()
		close(c.doneCh)
		c.nc.Close()
	})
}

func (c *conn) close() { c.fail(errors.New("closed")) }

func (c *conn) isDone() bool {
	select {
	case <-c.doneCh:
		return true
	default:
		return false
	}
}

func (c *conn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// readLoop reads c's packets until it closes: answers (9014) go to the packet waiting
// for them, commands to a goroutine of their own that answers them in order.
func (s *Sink) readLoop(c *conn) {
	cmds := make(chan command, 16)
	defer close(cmds)
	go func() {
		for cmd := range cmds {
			s.handle(c, cmd)
		}
	}()
	r := hj212.NewReader(c.nc)
	for {
		p, frame, err := r.Next()
		var fe *hj212.FrameError
		switch {
		case errors.As(err, &fe):
			s.log.Warn("bad packet from the platform", "err", fe.Err)
			if p, ok := badCRC(fe); ok {
				s.commands.Add(1)
				select {
				case cmds <- command{p: p, crc: true}:
				default:
				}
			}
			continue
		case err != nil:
			if errors.Is(err, io.EOF) {
				err = errors.New("closed by the platform")
			}
			c.fail(err)
			return
		}
		if p.CN == hj212.CNDataAnswer {
			if !c.answer(p.QN, p.MN) {
				s.log.Debug("answer to no packet waiting", "qn", p.QN, "mn", p.MN)
			}
			continue
		}
		if p.CN == hj212.CNNotifyAnswer || p.CN == hj212.CNRequestAnswer || p.CN == hj212.CNExecResult {
			continue // answers to what the sink sends without asking
		}
		s.commands.Add(1)
		select {
		case cmds <- command{p: p, frame: frame}:
		default:
			s.log.Warn("platform command dropped: too many waiting", "cn", p.CN, "qn", p.QN)
		}
	}
}

// badCRC returns the fields of a packet that failed its CRC or length check, so that
// it can be answered with QnRtn 9 (hj212.BadFrameHeader: QN and MN could be read).
func badCRC(fe *hj212.FrameError) (hj212.Packet, bool) {
	return hj212.BadFrameHeader(fe.Err)
}
