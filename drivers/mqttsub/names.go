package mqttsub

import (
	"fmt"
	"path"
	"sync"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// What a publisher may name. A topic level or a line-protocol tag can carry any valid
// name, and every new site or device name adds latest-value series to /metrics (issue
// 10: 60 009 names made 120 106 series and 216 MB of RSS). Three guards bound it:
// Subscription.Sites and Devices (allow-lists), Subscription.MaxDevices (the devices a
// subscription takes at a time) and Config.DeviceExpiry (when a silent device stops
// counting). Names reserved for the gateway itself (reading.Reserved) are refused
// whatever the lists say.

// Defaults of the name bounds, documented in docs/config.md.
const (
	// DefaultMaxDevices is the default of Subscription.MaxDevices: more devices than a
	// roadside box has sensors by far, few enough that their series (two per quantity)
	// stay a small part of a scrape and of the RAM of a 512 MB box.
	DefaultMaxDevices = 1000
	// MaxMaxDevices bounds Subscription.MaxDevices.
	MaxMaxDevices = 100000
	// DefaultDeviceExpiry is the default of Config.DeviceExpiry, the same as the metrics'
	// series expiry (config gateway.series_expiry): four times the longest staleness
	// threshold of the shipped alert rules (water parameters, 6 h, alerts/water.rules.yml),
	// so a stale alert fires before the device's series leave /metrics.
	DefaultDeviceExpiry = 24 * time.Hour
)

// checkPatterns explains what is wrong with an allow-list of name patterns: the index
// of the first bad pattern and why, or -1 and "".
func checkPatterns(patterns []string) (int, string) {
	for i, p := range patterns {
		switch _, err := path.Match(p, ""); {
		case p == "":
			return i, "must not be empty"
		case err != nil:
			return i, fmt.Sprintf("%q is not a pattern: * matches any characters, ? one, [a-z] one of a set (Go path.Match)", p)
		}
	}
	return -1, ""
}

// allowed reports whether name matches one of patterns; an empty list allows any name.
// The patterns are checked by New, so Match cannot fail here.
func allowed(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// checkNames refuses readings that pose as the gateway's own health or whose site or
// device the subscription does not list. It is part of plan.decode, so pure.
func (p *plan) checkNames(rs []reading.Reading) error {
	for _, r := range rs {
		switch {
		case reading.Reserved(r.Device, r.Quantity):
			return malformed(KindReserved, "device %q, quantity %q: device %q and the health quantities are reserved for the gateway's own readings",
				r.Device, r.Quantity, reading.HealthDevice)
		case !allowed(p.sites, r.Site):
			return malformed(KindUnlisted, "site %q is not in the subscription's sites", r.Site)
		case !allowed(p.devices, r.Device):
			return malformed(KindUnlisted, "device %q is not in the subscription's devices", r.Device)
		}
	}
	return nil
}

// admit decodes a message with p and counts its devices against p's max_devices; Run's
// goroutine only.
func (p *plan) admit(topic string, payload []byte, at time.Time) ([]reading.Reading, error) {
	rs, err := p.decode(topic, payload, at)
	if err != nil {
		return nil, err
	}
	if err := p.known.admit(rs, at); err != nil {
		return nil, err
	}
	return rs, nil
}

// deviceKey is a device at a site: the same device name at two sites is two sets of
// series.
type deviceKey struct{ site, device string }

// deviceSet is the devices a subscription has taken readings from, with the arrival
// time of each one's latest message. It holds at most max entries; a device silent
// for expiry is forgotten when room is needed, and when Devices asks (so that
// envgate_mqtt_devices falls when devices go silent). Its methods may be called from
// any goroutine.
type deviceSet struct {
	mu      sync.Mutex
	max     int
	expiry  time.Duration
	last    map[deviceKey]time.Time
	nextDue time.Time              // no entry expires before this
	fresh   map[deviceKey]struct{} // scratch for admit: a map, so a message of n devices costs O(n)
}

func newDeviceSet(max int, expiry time.Duration) *deviceSet {
	return &deviceSet{max: max, expiry: expiry, last: map[deviceKey]time.Time{}, fresh: map[deviceKey]struct{}{}}
}

// admit notes the devices of rs as seen at at, or refuses the whole message (and notes
// nothing) if its new devices do not fit.
func (d *deviceSet) admit(rs []reading.Reading, at time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.fresh)
	var first deviceKey
	for _, r := range rs {
		k := deviceKey{r.Site, r.Device}
		if _, ok := d.last[k]; ok {
			continue
		}
		if len(d.fresh) == 0 {
			first = k
		}
		d.fresh[k] = struct{}{}
	}
	if len(d.last)+len(d.fresh) > d.max {
		d.expire(at)
		if len(d.last)+len(d.fresh) > d.max {
			k := first
			return malformed(KindDeviceLimit, "device %q at site %q would be device %d of this subscription (max_devices %d; a device silent for %v no longer counts)",
				k.device, k.site, len(d.last)+1, d.max, d.expiry)
		}
	}
	for _, r := range rs {
		d.last[deviceKey{r.Site, r.Device}] = at
	}
	return nil
}

// expire forgets the devices silent for the expiry or longer. It scans only once
// the oldest entry can have expired. d.mu is held.
func (d *deviceSet) expire(now time.Time) {
	if now.Before(d.nextDue) {
		return
	}
	cut := now.Add(-d.expiry)
	oldest := now
	for k, t := range d.last {
		switch {
		case !t.After(cut):
			delete(d.last, k)
		case t.Before(oldest):
			oldest = t
		}
	}
	d.nextDue = oldest.Add(d.expiry)
}

// size forgets the devices silent for the expiry, if the oldest may be, and returns
// how many remain.
func (d *deviceSet) size(now time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	return len(d.last)
}

// Devices returns how many devices the subscriptions count toward their max_devices
// now (envgate_mqtt_devices): a device silent for the device expiry no longer counts.
// It is safe to call from any goroutine, and cheap unless a device may have expired.
func (s *Subscriber) Devices() int {
	n := 0
	now := s.cfg.Now()
	for _, p := range s.plans {
		n += p.known.size(now)
	}
	return n
}
