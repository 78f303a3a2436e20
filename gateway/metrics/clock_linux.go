package metrics

import "golang.org/x/sys/unix"

// clockState reads the kernel's NTP state (adjtimex, read-only): synchronised unless
// the kernel reports TIME_ERROR or STA_UNSYNC, and its estimate of the maximum error.
func clockState() (synced bool, maxError float64, ok bool) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, 0, false
	}
	synced = state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	return synced, float64(tx.Maxerror) / 1e6, true
}
