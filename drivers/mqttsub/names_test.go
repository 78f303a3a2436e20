package mqttsub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// kindOf returns the DecodeError kind of err, or "".
func kindOf(err error) string {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Kind
	}
	return ""
}

// Issue 10: a publisher could overwrite the gateway's own health series (topic
// …/gateway/buffer_dropped, or device=gateway in line protocol), and name any site or
// device. Decode refuses the reserved names and what the allow-lists leave out.
func TestDecodeReservedAndUnlisted(t *testing.T) {
	listed := loraNumber
	listed.Devices = []string{"nm-*", "aq-0[0-9]"}
	sited := waterLP
	sited.Sites = []string{"section-?"}
	for _, tc := range []struct {
		sub            Subscription
		topic, payload string
		kind           string // "" for good
	}{
		{loraNumber, "lora/gateway/la", "50", KindReserved},
		{loraNumber, "lora/Gateway/la", "50", KindReserved},
		{loraNumber, "lora/nm-1/buffer_dropped", "0", KindReserved},
		{loraNumber, "lora/nm-1/uptime", "5", KindReserved},
		{loraNumber, "lora/nm-1/la", "50", ""},
		{waterLP, "water/section-9/up", "health,device=gateway buffer_dropped=0", KindReserved},
		{waterLP, "water/section-9/up", "health buffer_dropped=0", KindReserved},
		{waterLP, "water/section-9/up", "wq ph=7.1\nhealth,device=gateway ph=7", KindReserved},
		{waterLP, "water/section-9/up", "wq ph=7.1", ""},
		{listed, "lora/nm-2/la", "50", ""},
		{listed, "lora/aq-07/pm25", "50", ""},
		{listed, "lora/aq-17/pm25", "50", KindUnlisted},
		{listed, "lora/x1/la", "50", KindUnlisted},
		{sited, "water/section-9/up", "wq ph=7.1", ""},
		{sited, "water/section-10/up", "wq ph=7.1", KindUnlisted},
		{sited, "water/section-9/up", "wq,site=elsewhere ph=7.1", KindUnlisted},
	} {
		rs, err := Decode(tc.sub, tc.topic, []byte(tc.payload), arrival)
		if got := kindOf(err); got != tc.kind || (tc.kind != "" && rs != nil) {
			t.Errorf("Decode(%s, %q) = %v, %v; want kind %q", tc.topic, tc.payload, rs, err, tc.kind)
		}
	}
}

// The device set takes at most max devices, refuses a message whose new devices do not
// fit (all of it, noting none), and forgets devices silent for the expiry.
func TestDeviceSet(t *testing.T) {
	t0 := time.Now()
	d := newDeviceSet(2, time.Hour)
	msg := func(devices ...string) []reading.Reading {
		var rs []reading.Reading
		for _, dev := range devices {
			rs = append(rs, reading.New(t0, "s", dev, "la", 50))
		}
		return rs
	}
	check := func(at time.Duration, kind string, devices ...string) {
		t.Helper()
		if got := kindOf(d.admit(msg(devices...), t0.Add(at))); got != kind {
			t.Errorf("at %v admit(%v) kind %q, want %q", at, devices, got, kind)
		}
	}
	check(0, "", "a", "b")
	check(time.Minute, KindDeviceLimit, "c")
	check(time.Minute, "", "a", "a") // known devices always pass
	check(30*time.Minute, "", "a")
	check(59*time.Minute, KindDeviceLimit, "c") // b is silent for 59 minutes: still counts
	check(time.Hour, "", "c")                   // now b has been silent for the expiry
	check(61*time.Minute, KindDeviceLimit, "c", "d")
	if n := len(d.last); n != 2 {
		t.Errorf("count = %d, want 2 (a and c)", n)
	}
	// The same device name at another site is another device.
	check(62*time.Minute, KindDeviceLimit, "a2")
	d2 := newDeviceSet(2, time.Hour)
	d2.admit([]reading.Reading{reading.New(t0, "s1", "x", "la", 1), reading.New(t0, "s2", "x", "la", 1)}, t0)
	if n := len(d2.last); n != 2 {
		t.Errorf("x at two sites: count %d, want 2", n)
	}
}

// New refuses bad allow-lists and limits, and reserved fixed names.
func TestNewNameErrors(t *testing.T) {
	cfg := validConfig()
	cfg.Subscriptions = []Subscription{
		{Topic: "a/+", Template: "a/{device}", Site: "s", Format: FormatNumber, Quantity: "la", Sites: []string{"ok-*", "["}, Devices: []string{""}, MaxDevices: -1},
		{Topic: "b", Site: "s", Device: "gateway", Format: FormatNumber, Quantity: "uptime"},
		{Topic: "c", Site: "s", Device: "d", Fields: []Field{{Path: "v", Quantity: "buffer_dropped"}}},
	}
	cfg.DeviceExpiry = -time.Second
	_, err := New(cfg, nil)
	for _, want := range []string{
		`subscriptions[0].sites[1]: "[" is not a pattern`,
		"subscriptions[0].devices[0]: must not be empty",
		"subscriptions[0].max_devices: must be 1 to 100000",
		`subscriptions[1].device: "gateway" is reserved`,
		`subscriptions[1].quantity: "uptime" is one of the gateway's own health quantities`,
		`subscriptions[2].fields[0].quantity: "buffer_dropped" is one of the gateway's own health quantities`,
		"device_expiry: -1s: want > 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New() error lacks %q; got:\n%v", want, err)
		}
	}
}

// Issue 10, against a real Mosquitto: a hostile publisher sends 20 000 distinct device
// names and spoofs the gateway's health, by topic and by line protocol, among the
// messages of a legitimate device. The subscriber counts at most max_devices devices,
// dead-letters and counts the rest by kind, never stalls, and the legitimate device's
// readings all arrive.
func TestRunHostilePublisher(t *testing.T) {
	const hostile, maxDevices, every = 20000, 100, 50
	b := startBroker(t, testsvc.MosquittoOptions{MaxQueued: 2 * hostile})
	num := loraNumber
	num.MaxDevices = maxDevices
	cfg := testConfig(b, "envgateHostile", num, waterLP)
	cfg.DeadLetter = filepath.Join(t.TempDir(), "dead.log")
	r := runSub(t, cfg, func(s *Subscriber) { s.lim.group = maxGroup })
	r.waitSubscribed()
	c := consume(t, r.out, 0, 5*time.Millisecond, func() error { return nil })

	var legit, spoofs int
	b.publishMany(hostile+hostile/every*3, func(i int) (string, string) {
		switch {
		case i%(every*3) == 0:
			legit++
			return "lora/nm-1/la", "55"
		case i%(every*3) == every:
			spoofs++
			return "lora/gateway/buffer_dropped", "0"
		case i%(every*3) == 2*every:
			spoofs++
			return "water/canal/up", "health,device=gateway buffer_dropped=0"
		}
		return fmt.Sprintf("lora/x%d/la", i), "50"
	})
	total := uint64(hostile + hostile/every*3)
	r.waitStats("every message", func(st Stats) bool { return st.Messages == total && st.InFlight == 0 })
	st := r.s.Stats()
	fakes := int(total) - legit - spoofs
	if got, want := st.ErrorsByKind[KindDeviceLimit], uint64(fakes-(maxDevices-1)); got != want {
		t.Errorf("device_limit = %d, want %d (%d fake devices, %d places after nm-1)", got, want, fakes, maxDevices-1)
	}
	if got := st.ErrorsByKind[KindReserved]; got != uint64(spoofs) {
		t.Errorf("reserved = %d, want %d", got, spoofs)
	}
	if got := r.s.Devices(); got != maxDevices {
		t.Errorf("Devices() = %d, want %d", got, maxDevices)
	}
	if st.DeadLettered != st.ErrorsByKind[KindDeviceLimit]+st.ErrorsByKind[KindReserved] {
		t.Errorf("dead-lettered %d, want device_limit + reserved; stats %+v", st.DeadLettered, st)
	}
	r.waitUnique(c, maxDevices)
	c.mu.Lock()
	got, gw := c.durable["nm-1"], c.durable[reading.HealthDevice]
	c.mu.Unlock()
	if got != legit || gw != 0 {
		t.Errorf("durable readings of nm-1 = %d, want %d; of gateway = %d, want 0", got, legit, gw)
	}
	r.stop()
	data, err := os.ReadFile(cfg.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"reason=device_limit: device \"x", "topic=lora/gateway/buffer_dropped reason=reserved", "topic=water/canal/up reason=reserved"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("dead-letter file lacks %q", want)
		}
	}
}

// Issue 10 review: envgate_mqtt_devices (Subscriber.Devices) did not fall when devices
// went silent, since the set expired only when it was full. size expires first.
func TestDeviceSetSizeForgetsSilentDevices(t *testing.T) {
	t0 := time.Now()
	d := newDeviceSet(1000, time.Hour)
	if err := d.admit([]reading.Reading{reading.New(t0, "s", "a", "la", 1), reading.New(t0, "s", "b", "la", 1)}, t0); err != nil {
		t.Fatal(err)
	}
	if err := d.admit([]reading.Reading{reading.New(t0, "s", "c", "la", 1)}, t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Duration
		want int
	}{{59 * time.Minute, 3}, {time.Hour, 1}, {90 * time.Minute, 0}} {
		if n := d.size(t0.Add(c.at)); n != c.want {
			t.Errorf("size at %v = %d, want %d", c.at, n, c.want)
		}
	}
}

// messageOf returns one message's readings from n distinct devices.
func messageOf(n int) []reading.Reading {
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = reading.New(time.Now(), "s", fmt.Sprintf("d%d", i), "la", 1)
	}
	return rs
}

// Issue 10 review: admit was quadratic in the distinct devices of one message (a
// linear search per device). A 50 000-device message (max_devices' limit is 100 000)
// is admitted; BenchmarkDeviceSetAdmit measures it.
func TestDeviceSetLargeMessage(t *testing.T) {
	d := newDeviceSet(MaxMaxDevices, time.Hour)
	if err := d.admit(messageOf(50000), time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := d.size(time.Now()); n != 50000 {
		t.Errorf("size %d, want 50000", n)
	}
}

func BenchmarkDeviceSetAdmit(b *testing.B) {
	rs := messageOf(50000)
	for b.Loop() {
		d := newDeviceSet(MaxMaxDevices, time.Hour)
		if err := d.admit(rs, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
