package metrics

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// TestSnapshot checks the live state Snapshot hands the status page: each device's
// polls and last error, the latest value of each series with its measurement time,
// and the buffer and sinks by name.
func TestSnapshot(t *testing.T) {
	m := New()
	now := time.Now()
	m.now = func() time.Time { return now }
	at := now.Add(-2 * time.Second).Truncate(time.Millisecond)
	m.ObserveReading(reading.New(at, "canal", "noise-1", "la", 52.5))
	m.ObserveReading(reading.New(at, "canal", "air-1", "pm25", 31))
	m.ObservePoll("noise-1", time.Millisecond, nil)
	m.ObservePoll("air-1", time.Millisecond, errors.New("timeout "+strings.Repeat("x", 1000)))
	m.ObservePoll("air-1", time.Millisecond, nil)
	m.AddBuffer(func() BufferStats { return BufferStats{Bytes: 4096} })
	m.AddSink("z-backup", func() SinkStats { return SinkStats{Unsent: 2} })
	m.AddSink("city", func() SinkStats { return SinkStats{Unsent: 7} })

	s := m.Snapshot()
	if len(s.Devices) != 2 || s.Devices[0].Device != "air-1" || s.Devices[1].Device != "noise-1" {
		t.Fatalf("Devices = %+v, want air-1 and noise-1", s.Devices)
	}
	a := s.Devices[0]
	if !a.Up || a.Polls != 2 || a.Errors != 1 || !strings.HasPrefix(a.LastError, "timeout") || len(a.LastError) > maxErrorText ||
		!a.LastErrorAt.Equal(now) || !a.LastSuccess.Equal(now) {
		t.Errorf("air-1 = %+v, want up after 2 polls, the failed one's error cut to %d bytes", a, maxErrorText)
	}
	if len(s.Latest) != 2 || s.Latest[1] != (Latest{Site: "canal", Device: "noise-1", Quantity: "la", Unit: "dB(A)", Value: 52.5, Time: s.Latest[1].Time, Seen: now}) ||
		!s.Latest[1].Time.Equal(at) {
		t.Errorf("Latest = %+v, want air-1 pm25 and noise-1 la 52.5 at %v", s.Latest, at)
	}
	if s.Buffer == nil || s.Buffer.Bytes != 4096 || len(s.Sinks) != 2 || s.Sinks[0].Name != "city" || s.Sinks[0].Unsent != 7 {
		t.Errorf("Buffer %+v, Sinks %+v", s.Buffer, s.Sinks)
	}
}

// TestDeviceLogBounded checks that the poll record forgets the device polled longest
// ago beyond maxDeviceLog devices: names from outside cannot grow it without bound.
func TestDeviceLogBounded(t *testing.T) {
	m := New()
	t0 := time.Now()
	for i := range maxDeviceLog + 10 {
		m.now = func() time.Time { return t0.Add(time.Duration(i) * time.Second) }
		m.devices.observe(fmt.Sprintf("dev-%d", i), m.now(), nil)
	}
	s := m.Snapshot()
	if len(s.Devices) != maxDeviceLog {
		t.Fatalf("%d devices remembered, want %d", len(s.Devices), maxDeviceLog)
	}
	for _, d := range s.Devices {
		if d.Device == "dev-0" || d.Device == "dev-9" {
			t.Errorf("%s, among the oldest, still remembered", d.Device)
		}
	}
}
