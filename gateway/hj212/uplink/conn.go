package uplink

import (
	"context"
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
	waiters map[string]*waiter // QN and MN → the packet waiting for its answer, and sends owed one
	cause   error
	once    sync.Once
}

func newConn(nc net.Conn) *conn {
	return &conn{nc: nc, doneCh: make(chan struct{}), waiters: map[string]*waiter{}, last: time.Now()}
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

// A waiter counts the sends of one QN and MN. The parts of a split record share a QN
// and their answers (9014) carry no PNO, so an answer is matched by order: it answers
// a send still owed one. Sends of an earlier packet (a part re-sent after a timeout,
// then answered) are owed first, so a late answer to part k is not taken for part k+1.
type waiter struct {
	ch    chan struct{} // closed when the waiting packet is answered; nil when none waits
	sends int           // sends of the waiting packet
	late  int           // sends of earlier packets, not answered yet
}

// expect counts one send of the packet qn of mn and returns the channel closed when it
// is answered: the same channel for each re-send of the packet, until it is answered or
// forgotten.
func (c *conn) expect(qn, mn string) <-chan struct{} {
	k := qn + "|" + mn
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiters[k]
	if w == nil {
		// Packets are sent one at a time: the late answers owed to another QN
		// can only be answers to no packet waiting.
		clear(c.waiters)
		w = &waiter{}
		c.waiters[k] = w
	}
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	w.sends++
	return w.ch
}

// forget stops the wait for the packet qn of mn: its sends are still owed an answer.
func (c *conn) forget(qn, mn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.waiters[qn+"|"+mn]; w != nil && w.ch != nil {
		w.late += w.sends
		w.ch, w.sends = nil, 0
	}
}

// answer reports an answer to qn of mn: it goes to the sends of earlier packets first,
// then to the waiting packet. It returns false if no send is owed one.
func (c *conn) answer(qn, mn string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiters[qn+"|"+mn]
	switch {
	case w == nil:
		return false
	case w.late > 0:
		w.late--
	case w.ch != nil:
		close(w.ch)
		w.late += w.sends - 1
		w.ch, w.sends = nil, 0
	default:
		return false
	}
	return true
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
// for them, commands to a goroutine of their own that answers them in order, under a
// context cancelled when c fails or closes (a history request stops with it).
func (s *Sink) readLoop(c *conn) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmds := make(chan command, 16)
	defer close(cmds)
	go func() {
		for cmd := range cmds {
			s.handle(ctx, c, cmd)
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
