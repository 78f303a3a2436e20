package main

import (
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// httpLimits bound what HTTP clients of /metrics and /healthz can hold: time per
// request and connections at once (docs/config.md, "HTTP"). Without them 1 015 idle
// keep-alive connections under a 1 024-descriptor limit left the buffer unable to
// open segments and the sinks unable to connect (issue 10).
type httpLimits struct {
	ReadHeader time.Duration // to read a request's headers
	Read       time.Duration // to read a whole request
	Write      time.Duration // to write a response, from the end of the request headers
	Idle       time.Duration // a keep-alive connection waits this long for its next request
	MaxConns   int           // connections open at once
}

// defaultHTTPLimits returns the limits of the gateway's HTTP server. A scrape of
// /metrics takes milliseconds; Prometheus scrapes every 15 s to 1 min and reconnects
// when its idle connection was closed.
func defaultHTTPLimits() httpLimits {
	return httpLimits{
		ReadHeader: 5 * time.Second,
		Read:       10 * time.Second,
		Write:      30 * time.Second,
		Idle:       60 * time.Second,
		MaxConns:   maxHTTPConns(openFileLimit()),
	}
}

// maxHTTPConns returns the cap on HTTP connections for a process allowed limit open
// descriptors: an eighth of it, between 4 and 64, so that at least 7/8 stay for the
// buffer's segments and cursors, the sinks' connections, brokers, serial ports and
// dead-letter files (docs/design.md, "Descriptors").
func maxHTTPConns(limit uint64) int {
	return int(min(max(limit/8, 4), 64))
}

// openFileLimit returns the soft RLIMIT_NOFILE. Go raises it to the hard limit when a
// program starts (since Go 1.19), so this is the most the process can open.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 1024
	}
	return r.Cur
}

// newHTTPServer returns a server for h with the limits lim, and l wrapped so that
// it holds at most lim.MaxConns connections. At the cap, the server closes its idle
// keep-alive connections before it accepts another, so that a new client (a
// scrape, a health check) is answered rather than queued behind idle ones.
func newHTTPServer(h http.Handler, l net.Listener, lim httpLimits) (*http.Server, *limitListener) {
	ll := &limitListener{Listener: l, slots: make(chan struct{}, lim.MaxConns), wake: make(chan struct{}, 1), done: make(chan struct{}), idle: map[net.Conn]bool{}}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeader,
		ReadTimeout:       lim.Read,
		WriteTimeout:      lim.Write,
		IdleTimeout:       lim.Idle,
		ConnState:         ll.connState,
		// Clients that time out or are closed at the cap are not the operator's
		// business; net/http would log each one.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return srv, ll
}

// limitListener accepts at most cap(slots) connections at once; each holds a slot
// until it is closed.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	wake      chan struct{} // signalled when a connection goes idle
	done      chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	idle map[net.Conn]bool // connections between requests, which may be closed at the cap
}

// Accept waits for a free slot, closing idle connections when there is none, then
// accepts a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	for acquired := false; !acquired; {
		select {
		case l.slots <- struct{}{}:
			acquired = true
			continue
		default:
		}
		l.closeIdle()
		select {
		case l.slots <- struct{}{}:
			acquired = true
		case <-l.wake: // a connection went idle: close it and take its slot
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close closes the listener and ends a wait for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// open returns the number of slots held: by open connections, and by an Accept
// under way.
func (l *limitListener) open() int { return len(l.slots) }

// connState tracks which connections are idle; it is the server's ConnState hook.
func (l *limitListener) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == http.StateIdle {
		l.idle[c] = true
		select {
		case l.wake <- struct{}{}:
		default:
		}
	} else {
		delete(l.idle, c)
	}
}

// closeIdle closes every idle connection. A client that was about to reuse one
// retries its request on a new connection, as HTTP/1.1 allows for GET.
func (l *limitListener) closeIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.idle {
		c.Close()
		delete(l.idle, c)
	}
}

// limitedConn gives its slot back when it is first closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
