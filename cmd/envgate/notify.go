package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envgate/envgate/gateway"
)

// The service manager protocol (sd_notify(3), docs/design.md §10): envgate runs as a
// Type=notify unit and tells systemd when it is ready, how its backlog stands, that it
// is still alive, and that it stops.

// notifySocket is the datagram socket systemd listens on, or nil outside a notify unit.
type notifySocket struct{ addr *net.UnixAddr }

// newNotifySocket reads $NOTIFY_SOCKET: a path, or an abstract socket written with a
// leading '@' (Go's net package maps that '@' to the abstract namespace's NUL byte).
// It returns nil when the variable is unset and an error for a kind we cannot reach
// (systemd 254's vsock: addresses, used by virtual machines only).
func newNotifySocket(name string) (*notifySocket, error) {
	switch {
	case name == "":
		return nil, nil
	case name[0] != '/' && name[0] != '@':
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q: only unix sockets (a path, or @abstract) are supported", name)
	}
	return &notifySocket{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}, nil
}

// send sends one message (newline-separated KEY=VALUE lines) as one datagram. A socket
// per message keeps it working when systemd re-executes and makes its socket anew.
func (s *notifySocket) send(msg string) error {
	if s == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, s.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %w", s.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify %s: %w", s.addr.Name, err)
	}
	return nil
}

// watchdogEvery returns how often to send WATCHDOG=1: half of $WATCHDOG_USEC, as
// sd_watchdog_enabled(3) advises, or 0 when no watchdog applies to this process
// ($WATCHDOG_USEC unset, or $WATCHDOG_PID names another process).
func watchdogEvery(usec, pid string) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	n, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC=%q: want a positive number of microseconds", usec)
	}
	return time.Duration(n) * time.Microsecond / 2, nil
}

// statusEvery is how often the STATUS= line with the backlog is refreshed.
const statusEvery = 10 * time.Second

// notifier runs the protocol for one running gateway.
type notifier struct {
	sock *notifySocket
	log  *slog.Logger
	stop chan struct{}
	wg   sync.WaitGroup
}

// startNotify tells systemd the gateway is ready (the config is valid, the buffer is
// open and the HTTP listener bound: start returned), then keeps the STATUS= line and
// the watchdog going until close, and sends STOPPING=1 as soon as ctx is done. Without
// $NOTIFY_SOCKET it does nothing.
func startNotify(ctx context.Context, g *running, log *slog.Logger) *notifier {
	n := &notifier{log: log.With("component", "systemd"), stop: make(chan struct{})}
	sock, err := newNotifySocket(os.Getenv("NOTIFY_SOCKET"))
	if err != nil {
		n.log.Warn("cannot notify the service manager", "err", err)
	}
	every, werr := watchdogEvery(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"))
	if werr != nil {
		n.log.Warn("watchdog disabled", "err", werr)
	}
	if sock == nil {
		return n
	}
	n.sock = sock
	n.notify("READY=1")
	n.wg.Go(func() { n.status(ctx, func() []gateway.Backlog { return g.current().pipeline.Backlogs() }) })
	if every > 0 {
		n.wg.Go(func() { n.watchdog(every, func() error { return g.current().pipeline.Wedged() }) })
	}
	return n
}

// close stops the loops. Call it once, when the gateway has shut down.
func (n *notifier) close() {
	close(n.stop)
	n.wg.Wait()
}

// notify sends msg, logging a failure (systemd then kills a Type=notify unit that never
// got READY=1 at TimeoutStartSec, or one that stops feeding its watchdog).
func (n *notifier) notify(msg string) {
	if err := n.sock.send(msg); err != nil {
		n.log.Warn("cannot notify the service manager", "err", err)
	}
}

// status sends the backlog now and every statusEvery, and STOPPING=1 once ctx is done.
// backlogs may wait for the buffer (a hung disk): then only this loop waits.
func (n *notifier) status(ctx context.Context, backlogs func() []gateway.Backlog) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		n.notify("STATUS=" + statusLine(backlogs()))
		select {
		case <-t.C:
		case <-ctx.Done():
			n.notify("STOPPING=1\nSTATUS=stopping: delivering what is pending; the rest stays on disk")
			return
		case <-n.stop:
			return
		}
	}
}

// statusLine is the backlog as systemctl status shows it: one part per sink.
func statusLine(bs []gateway.Backlog) string {
	if len(bs) == 0 {
		return "running; no sinks, readings kept in the buffer"
	}
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%s: %d unsent", b.Sink, b.Unsent)
		if b.Unsent > 0 && b.Oldest > 0 {
			parts[i] += ", oldest " + b.Oldest.Truncate(time.Second).String()
		}
	}
	return "running; " + strings.Join(parts, "; ")
}

// watchdog sends WATCHDOG=1 every interval while wedged reports nil. While a loop is
// wedged it withholds the keep-alive and says why in STATUS=, and systemd restarts the
// service after WatchdogSec.
func (n *notifier) watchdog(every time.Duration, wedged func() error) {
	t := time.NewTicker(every)
	defer t.Stop()
	var withheld error
	for {
		err := wedged()
		switch {
		case err == nil:
			if withheld != nil {
				n.log.Info("pipeline progresses again; watchdog keep-alives resume")
			}
			n.notify("WATCHDOG=1")
		case withheld == nil:
			n.log.Error("pipeline wedged; withholding watchdog keep-alives, systemd will restart envgate", "err", err)
			n.notify("STATUS=wedged, watchdog withheld: " + strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		withheld = err
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
	}
}
