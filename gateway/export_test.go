package gateway

import "time"

// SetQueue makes the writer, the health poller and Healthy of p call q instead of
// Config.Queue (tests wrap the real queue to make its calls hang). Call it before Run.
func SetQueue(p *Pipeline, q queue) { p.queue = q }

// SetWallClock makes p's time gate (timegate.go) read the wall clock from now and the
// kernel's synchronisation from synced instead of internal/clock and adjtimex. Call it
// before Run.
func SetWallClock(p *Pipeline, now func() time.Time, synced func() (bool, bool)) {
	p.gate.now, p.gate.synced = now, synced
}
