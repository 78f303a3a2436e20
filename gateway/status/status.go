// Package status serves the gateway's read-only status page and its data: a JSON model
// of what the installer at the roadside needs (every bus and device with its last
// reading, noise against the limit that applies now, AQI, water class, the buffer and
// each forwarder's backlog, the last errors) at /api/status, the page that renders it
// at /, and the readings as they arrive at /api/readings (the stream `envgate tail`
// reads).
//
// It reads what already lives elsewhere: the metrics' live state (metrics.Snapshot),
// the pipeline's admitted readings (Feed.Publish) and the logger's warnings and errors
// (Ring). It writes nothing and changes nothing.
package status

import (
	"math"
	"sync"
	"time"

	"github.com/envgate/envgate/gateway/metrics"
)

// Version is the version of the JSON model at /api/status. A field is added without a
// new version; a field is removed or changes meaning only with a new version.
const Version = 1

// Status is the JSON document at /api/status. Times are RFC 3339 in UTC; ages and
// ETAs are seconds; levels are dB(A); a value the gateway does not have (no data in
// the window, never polled, no delivery rate yet) is null, never 0.
type Status struct {
	Version int       `json:"version"` // Version
	Gateway string    `json:"gateway"` // gateway.id
	Site    string    `json:"site"`    // gateway.site
	Build   string    `json:"build"`   // envgate's version
	Now     time.Time `json:"now"`     // when the document was made, by the gateway's clock
	Health  string    `json:"health"`  // "ok", or why /healthz fails

	Groups []Group `json:"groups"` // buses, MQTT sources and stand-alone devices, in config order
	Noise  []Noise `json:"noise"`
	Air    []Air   `json:"air"`
	Water  []Water `json:"water"`
	// Quality is every channel data-quality screening has flagged since the start
	// (docs/data-model.md, "Data-quality screening"), by site, device and quantity.
	Quality []Quality     `json:"quality"`
	Buffer  *Buffer       `json:"buffer"` // null before the buffer is open
	Sinks   []Sink        `json:"sinks"`
	Errors  []ErrorRecord `json:"errors"` // the last warnings and errors, newest first
	// Maintenance is the devices in a maintenance or calibration window now, by device
	// name (their readings are kept out of the derivations; `envgate maint`).
	Maintenance []Maintenance `json:"maintenance"`
}

// Maintenance is a device in a maintenance or calibration window.
type Maintenance struct {
	Device string    `json:"device"`
	Kind   string    `json:"kind"`   // "maintenance" or "calibration"
	Reason string    `json:"reason"` // "" if none was given
	Since  time.Time `json:"since"`  // start of the window, by the gateway's clock
	Age    float64   `json:"age"`    // seconds since Since
	// Excluded is how many of its readings the derivations kept out since the gateway
	// started.
	Excluded uint64 `json:"excluded"`
}

// Group is a bus, an MQTT source, or the stand-alone devices of one kind.
type Group struct {
	Name string `json:"name"`
	// Kind is "modbus", "mqtt", "pm", "sim", "hj212", "gateway" (its own health readings; up
	// while it is healthy), or "other" for devices no config names.
	Kind string `json:"kind"`
	// Connected is set for MQTT sources: whether the broker connection is up.
	Connected *bool    `json:"connected,omitempty"`
	Devices   []Device `json:"devices"`
}

// Device is one device with its health and the latest value of each of its quantities.
type Device struct {
	Name string `json:"name"`
	// Up is whether its last poll succeeded; null if it was never polled (a device whose
	// readings arrive by MQTT without a staleness check, or one not polled yet).
	Up          *bool      `json:"up"`
	LastPoll    *time.Time `json:"last_poll"`
	LastError   string     `json:"last_error"` // of its most recent failed poll, "" if none
	LastErrorAt *time.Time `json:"last_error_at"`
	// Age is the age of its newest reading, in seconds; null without readings.
	Age      *float64  `json:"age"`
	Readings []Reading `json:"readings"` // by site, then quantity
}

// Reading is the latest value of one quantity of a device.
type Reading struct {
	Site     string    `json:"site"`
	Quantity string    `json:"quantity"`
	Value    float64   `json:"value"`
	Unit     string    `json:"unit"`
	Time     time.Time `json:"time"` // measurement time
	Age      float64   `json:"age"`  // seconds since Time, by the gateway's clock
}

// Noise is one noise monitor: its running levels against the limit that applies now
// (GB 3096; docs/standards.md §1.1, §1.2).
type Noise struct {
	Site          string   `json:"site"`
	Device        string   `json:"device"`
	Zone          string   `json:"zone"`
	QuietDistrict bool     `json:"quiet_district"`
	Period        string   `json:"period"` // "day" or "night"
	Limit         *float64 `json:"limit"`
	LeqMinute     *float64 `json:"laeq_1m"`     // running LAeq of the clock minute
	LeqHour       *float64 `json:"laeq_1h"`     // of the clock hour
	LeqPeriod     *float64 `json:"laeq_period"` // of the day or night period
	Exceedance    *float64 `json:"exceedance"`  // laeq_period − limit, dB; negative when under
	Over          bool     `json:"over"`        // exceedance > 0
}

// Air is one air monitor's AQI of its most recently closed hour, with the level's
// category and official colour (docs/standards.md §2.5).
type Air struct {
	Site     string     `json:"site"`
	Device   string     `json:"device"`
	Edition  string     `json:"edition"`
	Hour     *time.Time `json:"hour"` // start of the hour; null before the first
	AQI      *float64   `json:"aqi"`
	Level    int        `json:"level"`    // 1..6, 0 without an AQI
	Category string     `json:"category"` // "Excellent" ... "Severely polluted", "" without an AQI
	Colour   string     `json:"colour"`   // "#00E400" ... "#7E0023", "" without an AQI
	Primary  []string   `json:"primary"`
	DailyAQI *float64   `json:"daily_aqi"` // of the most recently closed day
}

// Water is one water section's GB 3838 class in its newest window (docs/standards.md §3.2).
type Water struct {
	Site        string     `json:"site"`
	Waterbody   string     `json:"waterbody"`
	WindowStart *time.Time `json:"window_start"`
	Class       int        `json:"class"` // 1..5 for I..V, 6 for worse than V, 0 without data
	ClassName   string     `json:"class_name"`
	Target      int        `json:"target"`
	TargetName  string     `json:"target_name"`
	Met         *bool      `json:"met"` // class ≤ target; null without data
	Missed      int        `json:"missed"`
	Missing     int        `json:"missing"`
}

// Quality is one screened channel that has had readings flagged.
type Quality struct {
	Site     string            `json:"site"`
	Device   string            `json:"device"`
	Quantity string            `json:"quantity"`
	Flagged  string            `json:"flagged"` // reason of the latest reading's flag; "" when it is valid again
	Counts   map[string]uint64 `json:"counts"`  // flagged readings since the start, by reason (non-zero ones)
}

// Buffer is the durable buffer.
type Buffer struct {
	Bytes          int64  `json:"bytes"`
	MaxBytes       int64  `json:"max_bytes"`
	Unsent         int64  `json:"unsent"` // readings some sink has not delivered: the largest sink backlog
	Dropped        uint64 `json:"dropped"`
	Degraded       bool   `json:"degraded"`
	MemoryReadings int64  `json:"memory_readings"`
}

// Sink is one forwarder's backlog.
type Sink struct {
	Name         string     `json:"name"`
	Unsent       int64      `json:"unsent"`
	OldestAge    float64    `json:"oldest_unsent_age"` // seconds
	Written      uint64     `json:"written"`
	Failing      bool       `json:"failing"`
	Persistent   bool       `json:"persistent"` // failing with an error an operator must fix
	LastSuccess  *time.Time `json:"last_success"`
	DeliveryRate *float64   `json:"delivery_rate"` // readings per second over the last minute; null until known
	// ETA is when the backlog is delivered, in seconds at the rate it shrank over the
	// last minute (delivery minus arrival): 0 when caught up, null when it did not
	// shrink (or not known yet).
	ETA *float64 `json:"eta"`
}

// Layout is the configured structure the page shows devices in.
type Layout []Group

// Config is what a Server reads.
type Config struct {
	Gateway, Site, Build string
	Layout               Layout           // groups with their configured devices; Devices' fields other than Name are ignored
	Metrics              *metrics.Metrics // required
	Healthy              func() error     // nil: always healthy
	Errors               *Ring            // nil: no error list
	Feed                 *Feed            // nil: /api/readings answers 404
	Now                  func() time.Time // the gateway's clock; nil: time.Now
	// StreamQueue is the readings each /api/readings client may fall behind by before
	// it loses some (0: DefaultQueue); Heartbeat how often a quiet stream sends a
	// heartbeat (0: DefaultHeartbeat).
	StreamQueue int
	Heartbeat   time.Duration
}

// Server makes Status documents and serves them (Handler). Its methods are safe for
// concurrent use.
type Server struct {
	cfg       Config
	queue     int
	heartbeat time.Duration

	mu      sync.Mutex
	samples map[string][]sample // per sink, for its rates
}

// sample is one observation of a sink's counters.
type sample struct {
	at      time.Time // monotonic
	written uint64
	unsent  int64
}

// rateWindow is how far back the delivery rate and the ETA look.
const rateWindow = time.Minute

// maxSamples bounds the samples kept per sink: at most one a second is kept.
const maxSamples = 61

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, queue: cfg.StreamQueue, heartbeat: cfg.Heartbeat, samples: map[string][]sample{}}
	if s.queue <= 0 {
		s.queue = DefaultQueue
	}
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultHeartbeat
	}
	return s
}

// Status returns the status now.
func (s *Server) Status() Status {
	now := s.cfg.Now()
	snap := s.cfg.Metrics.Snapshot()
	st := Status{Version: Version, Gateway: s.cfg.Gateway, Site: s.cfg.Site, Build: s.cfg.Build, Now: now.UTC(), Health: "ok",
		Groups: []Group{}, Noise: []Noise{}, Air: []Air{}, Water: []Water{}, Quality: []Quality{}, Sinks: []Sink{}, Errors: []ErrorRecord{},
		Maintenance: []Maintenance{}}
	if s.cfg.Healthy != nil {
		if err := s.cfg.Healthy(); err != nil {
			st.Health = err.Error()
		}
	}
	st.Groups = groups(s.cfg.Layout, snap, now)
	// The gateway's own health device is not polled: it is up while the gateway is healthy.
	healthy := st.Health == "ok"
	for _, g := range st.Groups {
		if g.Kind == "gateway" {
			for i := range g.Devices {
				g.Devices[i].Up = &healthy
			}
		}
	}
	for _, n := range snap.Noise {
		st.Noise = append(st.Noise, noiseOf(n))
	}
	for _, a := range snap.Air {
		st.Air = append(st.Air, airOf(a))
	}
	for _, w := range snap.Water {
		st.Water = append(st.Water, waterOf(w))
	}
	for _, q := range snap.Screen {
		counts := map[string]uint64{}
		for reason, n := range q.Flagged {
			if n > 0 {
				counts[reason] = n
			}
		}
		if len(counts) > 0 {
			st.Quality = append(st.Quality, Quality{Site: q.Site, Device: q.Device, Quantity: q.Quantity, Flagged: q.Latest, Counts: counts})
		}
	}
	var maxUnsent int64
	for _, k := range snap.Sinks {
		st.Sinks = append(st.Sinks, s.sinkOf(k, time.Now()))
		maxUnsent = max(maxUnsent, k.Unsent)
	}
	if b := snap.Buffer; b != nil {
		st.Buffer = &Buffer{Bytes: b.Bytes, MaxBytes: b.MaxBytes, Unsent: maxUnsent, Dropped: b.Dropped,
			Degraded: b.Degraded, MemoryReadings: b.MemoryReadings}
	}
	if s.cfg.Errors != nil {
		st.Errors = s.cfg.Errors.Records()
	}
	for _, m := range snap.Maintenance {
		if m.Kind != "" {
			st.Maintenance = append(st.Maintenance, Maintenance{Device: m.Device, Kind: m.Kind, Reason: m.Reason,
				Since: m.Since.UTC(), Age: max(now.Sub(m.Since).Seconds(), 0), Excluded: m.Excluded})
		}
	}
	return st
}

// groups places every device in its configured group, with its poll record and latest
// readings; devices with readings or polls that no group names go in a last group
// "other" (devices named by MQTT topics, the gateway's own health device).
func groups(layout Layout, snap metrics.Snapshot, now time.Time) []Group {
	polls := map[string]metrics.DeviceStatus{}
	for _, d := range snap.Devices {
		polls[d.Device] = d
	}
	latest := map[string][]metrics.Latest{}
	var order []string // devices in the order of their first reading (by site, device)
	for _, l := range snap.Latest {
		if _, ok := latest[l.Device]; !ok {
			order = append(order, l.Device)
		}
		latest[l.Device] = append(latest[l.Device], l)
	}
	mqtt := map[string]bool{}
	for _, m := range snap.MQTT {
		mqtt[m.Name] = m.Connected
	}
	placed := map[string]bool{}
	device := func(name string) Device {
		placed[name] = true
		d := Device{Name: name, Readings: []Reading{}}
		if p, ok := polls[name]; ok {
			d.Up = &p.Up
			d.LastPoll = utc(p.LastPoll)
			d.LastError = p.LastError
			d.LastErrorAt = utc(p.LastErrorAt)
		}
		var newest time.Time
		for _, l := range latest[name] {
			d.Readings = append(d.Readings, Reading{Site: l.Site, Quantity: l.Quantity, Value: l.Value, Unit: l.Unit,
				Time: l.Time.UTC(), Age: max(now.Sub(l.Time).Seconds(), 0)})
			if l.Time.After(newest) {
				newest = l.Time
			}
		}
		if !newest.IsZero() {
			age := max(now.Sub(newest).Seconds(), 0)
			d.Age = &age
		}
		return d
	}
	out := []Group{}
	for _, g := range layout {
		ng := Group{Name: g.Name, Kind: g.Kind, Devices: []Device{}}
		if c, ok := mqtt[g.Name]; ok && g.Kind == "mqtt" {
			ng.Connected = &c
		}
		for _, d := range g.Devices {
			if !placed[d.Name] {
				ng.Devices = append(ng.Devices, device(d.Name))
			}
		}
		out = append(out, ng)
	}
	other := Group{Name: "other", Kind: "other", Devices: []Device{}}
	for _, name := range order {
		if !placed[name] {
			other.Devices = append(other.Devices, device(name))
		}
	}
	for _, p := range snap.Devices {
		if !placed[p.Device] {
			other.Devices = append(other.Devices, device(p.Device))
		}
	}
	if len(other.Devices) > 0 {
		out = append(out, other)
	}
	return out
}

func noiseOf(n metrics.NoiseState) Noise {
	period := "day"
	if n.Night {
		period = "night"
	}
	out := Noise{Site: n.Site, Device: n.Device, Zone: n.Zone, QuietDistrict: n.QuietDistrict, Period: period,
		Limit: num(n.Limit), LeqMinute: num(n.LeqMinute), LeqHour: num(n.LeqHour), LeqPeriod: num(n.LeqPeriod),
		Exceedance: num(n.Exceedance)}
	out.Over = out.Exceedance != nil && *out.Exceedance > 0
	return out
}

// aqiLevels are the AQI levels' English categories and official colours, level 1 to 6
// (docs/standards.md §2.5).
var aqiLevels = [...]struct{ category, colour string }{
	{"Excellent", "#00E400"},
	{"Good", "#FFFF00"},
	{"Lightly polluted", "#FF7E00"},
	{"Moderately polluted", "#FF0000"},
	{"Heavily polluted", "#99004C"},
	{"Severely polluted", "#7E0023"},
}

// AQILevel returns the English category and official colour of AQI level 1..6
// (docs/standards.md §2.5), or "", "" for any other level.
func AQILevel(level int) (category, colour string) {
	if level < 1 || level > len(aqiLevels) {
		return "", ""
	}
	l := aqiLevels[level-1]
	return l.category, l.colour
}

func airOf(a metrics.AirState) Air {
	out := Air{Site: a.Site, Device: a.Device, Edition: a.Edition, AQI: num(a.AQI), DailyAQI: num(a.DailyAQI),
		Primary: append([]string{}, a.Primary...)}
	if !math.IsNaN(a.Hour) {
		t := time.Unix(int64(a.Hour), 0).UTC()
		out.Hour = &t
	}
	if out.AQI != nil {
		out.Level = a.Level
		out.Category, out.Colour = AQILevel(a.Level)
	}
	return out
}

// ClassName returns the GB 3838 name of water class 1..6: "I" to "V", and "worse than V"
// (劣V) for 6; "" for any other.
func ClassName(class int) string {
	names := [...]string{"I", "II", "III", "IV", "V", "worse than V"}
	if class < 1 || class > len(names) {
		return ""
	}
	return names[class-1]
}

func waterOf(w metrics.WaterState) Water {
	out := Water{Site: w.Site, Waterbody: w.Waterbody, Class: w.Class, ClassName: ClassName(w.Class),
		Target: w.Target, TargetName: ClassName(w.Target), Missed: w.Missed, Missing: w.Missing}
	if !math.IsNaN(w.WindowStart) {
		t := time.Unix(int64(w.WindowStart), 0).UTC()
		out.WindowStart = &t
	}
	if w.Class > 0 {
		met := w.Class <= w.Target
		out.Met = &met
	}
	return out
}

// sinkOf reports a sink's backlog, and records a sample of its counters taken at mono
// (time.Now: rates are measured on the monotonic clock, so a step of the wall clock
// does not fake one).
func (s *Server) sinkOf(k metrics.NamedSinkStats, mono time.Time) Sink {
	out := Sink{Name: k.Name, Unsent: k.Unsent, OldestAge: k.OldestUnsentAge.Seconds(), Written: k.Written,
		Failing: k.Failing, Persistent: k.Persistent, LastSuccess: utc(k.LastSuccess)}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.samples[k.Name]
	// Keep at most one sample a second, and none older than the window.
	if n := len(ss); n == 0 || mono.Sub(ss[n-1].at) >= time.Second {
		ss = append(ss, sample{at: mono, written: k.Written, unsent: k.Unsent})
	}
	for len(ss) > 2 && mono.Sub(ss[1].at) >= rateWindow {
		ss = ss[1:]
	}
	if len(ss) > maxSamples {
		ss = ss[len(ss)-maxSamples:]
	}
	s.samples[k.Name] = ss
	out.DeliveryRate, out.ETA = rates(ss, k.Unsent, mono)
	return out
}

// rates returns the delivery rate (readings a second) and the ETA of unsent readings
// from the samples ss (oldest first) and now; nil where unknown. The ETA uses the net
// rate the backlog shrank at: delivered minus arrived.
func rates(ss []sample, unsent int64, now time.Time) (rate, eta *float64) {
	if unsent == 0 {
		zero := 0.0
		eta = &zero
	}
	if len(ss) < 2 {
		return rate, eta
	}
	first, last := ss[0], ss[len(ss)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt < 1 || last.written < first.written {
		return rate, eta
	}
	r := float64(last.written-first.written) / dt
	rate = &r
	if unsent > 0 {
		if shrink := float64(first.unsent-last.unsent) / dt; shrink > 0 {
			e := float64(unsent) / shrink
			eta = &e
		}
	}
	return rate, eta
}

// num returns v, or nil for NaN or an infinity (JSON has neither).
func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// utc returns t in UTC, or nil for the zero time.
func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
