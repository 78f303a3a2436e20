package main

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// httpLimits bound what HTTP clients of /metrics and /healthz can hold: time per
// request, connections at once, and connections per remote address (maxConnsPerIP)
// (docs/config.md, "HTTP"; docs/design.md, "Descriptors"). Without them 1 015 idle
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
// it holds at most lim.MaxConns connections. At the cap, before it accepts another,
// the server closes its idle keep-alive connections, or else the connection that has
// waited longest for a request's headers to finish (issue 10 review: 1 000 clients
// sending a header line a second held every slot for the whole ReadHeader timeout),
// so that a new client (a scrape, a health check) is answered rather than queued.
// Connections whose request is being handled are never closed for room.
func newHTTPServer(h http.Handler, l net.Listener, lim httpLimits) (*http.Server, *limitListener) {
	ll := &limitListener{Listener: l, slots: make(chan struct{}, lim.MaxConns), wake: make(chan struct{}, 1), done: make(chan struct{}),
		conns: map[net.Conn]*connInfo{}, perIP: maxConnsPerIP(lim.MaxConns), byIP: map[string]int{}}
	srv := &http.Server{
		Handler:           ll.track(h),
		ReadHeaderTimeout: lim.ReadHeader,
		ReadTimeout:       lim.Read,
		WriteTimeout:      lim.Write,
		IdleTimeout:       lim.Idle,
		ConnState:         ll.connState,
		// HTTP/1.1 only, with TLS too (gateway.web_config_file): the limits follow each
		// connection through its states, which net/http does not report for HTTP/2
		// connections, and one HTTP/2 connection carries many requests at once.
		Protocols:   http1Only(),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		// Clients that time out or are closed at the cap are not the operator's
		// business; net/http would log each one.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return srv, ll
}

// maxConnsPerIP returns how many of maxConns connections one remote address may hold:
// half, and at least 2 (a local Prometheus and a health check), so that one host, the
// box itself included, cannot take every slot.
func maxConnsPerIP(maxConns int) int { return max(maxConns/2, 2) }

// connKey is the context key of a request's connection.
type connKey struct{}

// http1Only returns the protocol set of HTTP/1.1 alone.
func http1Only() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return p
}

// connInfo is what the limitListener knows of one connection.
type connInfo struct {
	raw     net.Conn  // the accepted connection (under TLS, the one under the *tls.Conn); closed for room
	ip      string    // the remote address
	idle    bool      // between requests
	serving bool      // its request's headers are read and the handler runs
	since   time.Time // when it began waiting for a request's headers (or went idle)
}

// limitListener accepts at most cap(slots) connections at once; each holds a slot
// until it is closed.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	wake      chan struct{} // signalled when a connection may have become closable
	done      chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	conns map[net.Conn]*connInfo

	perIP int            // connections one remote address may hold
	ipMu  sync.Mutex     // guards byIP; never held while closing a connection
	byIP  map[string]int // open connections per remote address
}

// Accept waits for a free slot, closing an idle or header-pending connection when
// there is none, then accepts a connection. A connection from a remote address that
// already holds perIP is taken only if one of that address's own is closed for it
// (see makeRoomFor); otherwise it is closed at once, and Accept accepts the next.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		if err := l.acquire(); err != nil {
			return nil, err
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		ip := remoteIP(c)
		if !l.admit(ip) {
			c.Close()
			<-l.slots
			continue
		}
		return &limitedConn{Conn: c, ip: ip, release: func() { l.leave(ip); <-l.slots }}, nil
	}
}

// acquire waits for a free slot, closing an idle or header-pending connection when
// there is none.
func (l *limitListener) acquire() error {
	for acquired := false; !acquired; {
		select {
		case l.slots <- struct{}{}:
			acquired = true
			continue
		default:
		}
		again := time.NewTimer(l.makeRoom())
		select {
		case l.slots <- struct{}{}:
			acquired = true
		case <-l.wake: // a connection went idle or began a request: look again
		case <-again.C: // a connection has waited minPending for its headers
		case <-l.done:
			again.Stop()
			return net.ErrClosed
		}
		again.Stop()
	}
	return nil
}

// remoteIP returns the address c comes from, without its port.
func remoteIP(c net.Conn) string {
	a := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(a); err == nil {
		return host
	}
	return a
}

// admit counts a new connection from ip, making room among ip's own connections if it
// holds perIP already; it reports false if there is none to close. Only Accept's
// goroutine admits, so the count cannot grow between the check and the increment.
func (l *limitListener) admit(ip string) bool {
	l.ipMu.Lock()
	full := l.byIP[ip] >= l.perIP
	l.ipMu.Unlock()
	if full && !l.makeRoomFor(ip) {
		return false
	}
	l.ipMu.Lock()
	defer l.ipMu.Unlock()
	if l.byIP[ip] >= l.perIP {
		return false
	}
	l.byIP[ip]++
	return true
}

// leave uncounts a connection from ip when it is closed.
func (l *limitListener) leave(ip string) {
	l.ipMu.Lock()
	defer l.ipMu.Unlock()
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

// makeRoomFor closes one of ip's connections, as makeRoom would for the whole server:
// an idle one, else the one that has waited longest, and at least minPending, for its
// request's headers. It reports whether it closed one.
func (l *limitListener) makeRoomFor(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var oldest net.Conn
	var since time.Time
	for c, ci := range l.conns {
		switch {
		case ci.ip != ip || ci.serving:
		case ci.idle:
			oldest, since = c, time.Time{}
		case since.IsZero() && oldest != nil:
			// an idle one is chosen already
		case oldest == nil || ci.since.Before(since):
			oldest, since = c, ci.since
		}
	}
	if oldest == nil || (!since.IsZero() && time.Since(since) < minPending) {
		return false
	}
	l.conns[oldest].raw.Close()
	delete(l.conns, oldest)
	return true
}

// Close closes the listener and ends a wait for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// open returns the number of slots held: by open connections, and by an Accept
// under way.
func (l *limitListener) open() int { return len(l.slots) }

// connState tracks each connection's state; it is the server's ConnState hook.
func (l *limitListener) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateNew:
		ci := &connInfo{since: time.Now(), raw: c}
		if tc, ok := c.(*tls.Conn); ok {
			// Closed for room, a TLS connection is closed under its TLS layer: no
			// close_notify, which could wait on a client that reads nothing, is sent.
			ci.raw = tc.NetConn()
		}
		if lc, ok := ci.raw.(*limitedConn); ok {
			ci.ip = lc.ip
		}
		l.conns[c] = ci
	case http.StateActive: // a request's first byte was read
		if ci := l.conns[c]; ci != nil && ci.idle {
			ci.idle, ci.since = false, time.Now()
		}
	case http.StateIdle:
		if ci := l.conns[c]; ci != nil {
			ci.idle, ci.serving, ci.since = true, false, time.Now()
		}
	default: // closed or hijacked
		delete(l.conns, c)
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// track wraps h so that the listener knows which connections' requests are being
// handled: those are never closed for room.
func (l *limitListener) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(net.Conn)
		l.setServing(c, true)
		defer l.setServing(c, false)
		h.ServeHTTP(w, r)
	})
}

func (l *limitListener) setServing(c net.Conn, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ci := l.conns[c]; ci != nil {
		ci.serving = on
		if !on {
			ci.since = time.Now()
		}
	}
}

// minPending is how long a connection may wait for its request's headers before it
// can be closed for room: honest clients send them in one packet, in milliseconds,
// even on a loaded box; a burst of them connecting at once must not evict each other.
const minPending = time.Second

// makeRoom closes every idle connection or, if there is none, the one that has waited
// longest, and at least minPending, for its request's headers. It returns when to look
// again: when the oldest such connection will have waited minPending (an hour if there
// is none: a change of state wakes Accept anyway). A client that was about to reuse an idle one
// retries its request on a new connection, as HTTP/1.1 allows for GET; a client that
// takes seconds to send its headers is not one of ours (Prometheus, curl and
// health checks send them in one packet).
func (l *limitListener) makeRoom() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var oldest net.Conn
	var since time.Time
	closed := false
	for c, ci := range l.conns {
		switch {
		case ci.idle:
			ci.raw.Close()
			delete(l.conns, c)
			closed = true
		case !ci.serving && (oldest == nil || ci.since.Before(since)):
			oldest, since = c, ci.since
		}
	}
	if closed || oldest == nil {
		return time.Hour
	}
	if wait := minPending - time.Since(since); wait > 0 {
		return wait
	}
	l.conns[oldest].raw.Close()
	delete(l.conns, oldest)
	return 0
}

// limitedConn gives its slot back when it is first closed.
type limitedConn struct {
	net.Conn
	ip      string // remote address, for the per-address cap
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
