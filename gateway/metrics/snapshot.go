package metrics

import (
	"sort"
	"sync"
	"time"
)

// DeviceStatus is what the gateway knows of one polled device's health: its polls
// (ObservePoll) and the last error, for the status page.
type DeviceStatus struct {
	Device      string
	Up          bool      // the last poll succeeded
	Polls       uint64    // polls since the gateway started
	Errors      uint64    // of them, failed
	LastPoll    time.Time // when the last poll ended
	LastSuccess time.Time // zero if none succeeded
	LastError   string    // of the most recent failed poll, "" if none failed
	LastErrorAt time.Time
}

// maxDeviceLog bounds the devices the poll log remembers: a device name can come from
// outside (an MQTT topic), and the log must not grow with every name a publisher
// invents. Past it, the device polled longest ago is forgotten.
const maxDeviceLog = 4096

// maxErrorText bounds the length of a remembered error message, in bytes.
const maxErrorText = 300

// deviceLog remembers the last poll of each device.
type deviceLog struct {
	mu     sync.Mutex
	byName map[string]*DeviceStatus
}

func (l *deviceLog) observe(device string, now time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.byName[device]
	if !ok {
		if len(l.byName) >= maxDeviceLog {
			l.forgetOldest()
		}
		d = &DeviceStatus{Device: device}
		l.byName[device] = d
	}
	d.Polls++
	d.LastPoll = now
	d.Up = err == nil
	if err != nil {
		d.Errors++
		d.LastError, d.LastErrorAt = truncate(err.Error(), maxErrorText), now
		return
	}
	d.LastSuccess = now
}

func (l *deviceLog) forgetOldest() {
	var oldest *DeviceStatus
	for _, d := range l.byName {
		if oldest == nil || d.LastPoll.Before(oldest.LastPoll) {
			oldest = d
		}
	}
	if oldest != nil {
		delete(l.byName, oldest.Device)
	}
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// Latest is the latest value of one series (site, device, quantity), as
// envgate_reading_value shows it.
type Latest struct {
	Site, Device, Quantity, Unit string
	Value                        float64
	Time                         time.Time // its measurement time
	Seen                         time.Time // when the gateway received it
}

// NamedSinkStats is one sink's stats with its name.
type NamedSinkStats struct {
	Name string
	SinkStats
}

// NamedMQTTStats is one MQTT source's stats with its name.
type NamedMQTTStats struct {
	Name string
	MQTTStats
}

// Snapshot is the live state behind the metrics at one instant, for the status page
// (gateway/status): the same functions and records the collectors read at scrape time.
type Snapshot struct {
	Devices []DeviceStatus // by device name
	Latest  []Latest       // by site, device, quantity
	Noise   []NoiseState
	Air     []AirState
	Water   []WaterState
	Screen  []ScreenState    // screened channels, by site, device, quantity
	Buffer  *BufferStats     // nil before AddBuffer
	Sinks   []NamedSinkStats // by name
	MQTT    []NamedMQTTStats // by name
	// Maintenance is every device's maintenance state (SetMaintenance), as the
	// function gives them.
	Maintenance []MaintState
}

// Snapshot returns the live state. Like a scrape it calls the functions given to
// AddBuffer, AddSink, AddMQTT, SetNoise, SetAir and SetWater, without holding a lock
// any of them could wait for.
func (m *Metrics) Snapshot() Snapshot {
	var s Snapshot
	m.devices.mu.Lock()
	for _, d := range m.devices.byName {
		s.Devices = append(s.Devices, *d)
	}
	m.devices.mu.Unlock()
	sort.Slice(s.Devices, func(i, j int) bool { return s.Devices[i].Device < s.Devices[j].Device })

	m.series.mu.Lock()
	for k, st := range m.series.seen {
		s.Latest = append(s.Latest, Latest{Site: k.site, Device: k.device, Quantity: k.quantity, Unit: st.unit,
			Value: st.value, Time: time.UnixMicro(int64(st.ts * 1e6)), Seen: st.seen})
	}
	m.series.mu.Unlock()
	sort.Slice(s.Latest, func(i, j int) bool {
		a, b := s.Latest[i], s.Latest[j]
		if a.Site != b.Site {
			return a.Site < b.Site
		}
		if a.Device != b.Device {
			return a.Device < b.Device
		}
		return a.Quantity < b.Quantity
	})

	m.noise.mu.Lock()
	noise := m.noise.states
	m.noise.mu.Unlock()
	m.airWater.mu.Lock()
	air, water := m.airWater.air, m.airWater.water
	m.airWater.mu.Unlock()
	if noise != nil {
		s.Noise = noise()
	}
	if air != nil {
		s.Air = air()
	}
	if water != nil {
		s.Water = water()
	}
	m.screen.mu.Lock()
	screen := m.screen.states
	m.screen.mu.Unlock()
	if screen != nil {
		s.Screen = screen()
	}

	m.state.mu.Lock()
	buffer := m.state.buffer
	sinks := make([]NamedSinkStats, 0, len(m.state.sinks))
	sinkFuncs := make([]func() SinkStats, 0, len(m.state.sinks))
	for name, f := range m.state.sinks {
		sinks = append(sinks, NamedSinkStats{Name: name})
		sinkFuncs = append(sinkFuncs, f)
	}
	m.state.mu.Unlock()
	if buffer != nil {
		b := buffer()
		s.Buffer = &b
	}
	for i, f := range sinkFuncs {
		sinks[i].SinkStats = f()
	}
	sort.Slice(sinks, func(i, j int) bool { return sinks[i].Name < sinks[j].Name })
	s.Sinks = sinks

	m.mqtt.mu.Lock()
	mq := make([]NamedMQTTStats, 0, len(m.mqtt.sources))
	mqFuncs := make([]func() MQTTStats, 0, len(m.mqtt.sources))
	for name, f := range m.mqtt.sources {
		mq = append(mq, NamedMQTTStats{Name: name})
		mqFuncs = append(mqFuncs, f)
	}
	m.mqtt.mu.Unlock()
	for i, f := range mqFuncs {
		mq[i].MQTTStats = f()
	}
	sort.Slice(mq, func(i, j int) bool { return mq[i].Name < mq[j].Name })
	s.MQTT = mq

	m.maint.mu.Lock()
	maint := m.maint.states
	m.maint.mu.Unlock()
	if maint != nil {
		s.Maintenance = maint()
	}
	return s
}
