package mqttsub

import (
	"crypto/tls"
	"math"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Name:          "street-mqtt",
		Broker:        "tcp://127.0.0.1",
		ClientID:      "envgateBox17",
		Subscriptions: []Subscription{esp32, chirpstack, loraNumber, waterLP},
	}
}

func TestNewDefaults(t *testing.T) {
	s, err := New(validConfig(), nil)
	if err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
	if got := s.broker.String(); got != "tcp://127.0.0.1:1883" {
		t.Errorf("broker = %q, want the default port filled in", got)
	}
	if s.cfg.KeepAlive != 30*time.Second || s.cfg.MaxReconnect != 30*time.Second || s.cfg.MaxPayload != 64<<10 || s.cfg.Now == nil {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	for i, p := range s.plans {
		if p.qos != 1 {
			t.Errorf("subscriptions[%d]: qos %d, want 1", i, p.qos)
		}
	}
	cfg := validConfig()
	cfg.Broker = "mqtts://broker.example.com"
	cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if s, err := New(cfg, nil); err != nil || s.broker.String() != "mqtts://broker.example.com:8883" {
		t.Errorf("New(mqtts) = %v; want port 8883", err)
	}
}

// New reports every problem at once, each with its field path.
func TestNewErrors(t *testing.T) {
	cfg := Config{
		Name:         "bad name",
		Broker:       "http://x",
		Password:     "secret",
		KeepAlive:    time.Millisecond,
		MaxReconnect: -1,
		MaxPayload:   -1,
		Subscriptions: []Subscription{
			{Topic: "a/#/b", Template: "a/{site}/{site}", Format: "xml", QoS: 2},
			{Topic: "env/+/x", Template: "env/{site}/{device}/#", Fields: []Field{{Path: "a..b", Quantity: "pm2.5"}, {Path: "v", Quantity: "pm25", Scale: 1}, {Path: "w", Quantity: "pm25"}}, Time: TimeSpec{Path: "ts"}},
			{Topic: "n", Format: FormatNumber, Site: "s", Device: "d", Time: TimeSpec{Format: TimeUnix}},
			{Topic: "lp", Format: FormatLineProtocol, Quantity: "la", Time: TimeSpec{Path: "t", Format: "unix_s"}},
			{Topic: "j", Site: "s", Device: "d", Fields: []Field{{Path: "v", Quantity: "co"}}, Time: TimeSpec{Path: "t", Format: "15:04"}},
			{Topic: "j", Template: "k", Site: "s", Device: "d", Fields: []Field{{Path: "v", Quantity: "co"}}},
			{Topic: "$share/g/x", Site: "s", Device: "d", Fields: []Field{{Path: "v", Quantity: "co"}}},
			{Topic: "q/+", Template: "q/{quantity}", Site: "s", Device: "d", Fields: []Field{{Path: "v", Quantity: "co"}}},
		},
	}
	_, err := New(cfg, nil)
	if err == nil {
		t.Fatal("New(bad) = nil, want errors")
	}
	// Every problem, at its field, in the words envgate check shows at the file's keys.
	want := `name: character ' ' not allowed (letters, digits, '-', '_', '.')
broker: must be tcp://, mqtt://, ssl:// or mqtts:// with a host and an optional port, such as ssl://broker.example:8883
client_id: required: a name the broker keeps this box's session under, the same after every restart
password: needs username: MQTT sends a password only with a user name (MQTT 3.1.1 §3.1.2.9)
keep_alive: must be whole seconds from 1s to 18h12m15s (MQTT sends it as a 16-bit number of seconds)
max_reconnect: must be at least 1s
max_payload: must be between 1 and 268435455 bytes, the largest MQTT packet
subscriptions[0].topic: # must be the last level, on its own, as in env/#
subscriptions[0].template: {site} appears more than once
subscriptions[0].format: must be one of json, number, lineprotocol
subscriptions[0].device: required: name a {device} level in the template, or set device here
subscriptions[0].qos: must be 1: QoS 1 keeps messages at the broker until the gateway has them on disk; QoS 0 could lose them
subscriptions[1].fields[0].path: must be keys separated by dots, with [i] for array elements, such as data.pm25 or sensors[0].value
subscriptions[1].fields[0].quantity: unknown quantity "pm2.5" (did you mean "pm25"?)
subscriptions[1].fields[2].quantity: duplicate quantity "pm25" (first at fields[1]); a message gives each quantity once
subscriptions[1].time.format: required with path: unix, unix_ms, unix_us, unix_ns, rfc3339, or a Go layout such as "2006-01-02 15:04:05"
subscriptions[2].quantity: required for format number: name a {quantity} level in the template, or set quantity here
subscriptions[2].time: is for formats json and lineprotocol: a number payload has only its value, and its reading gets the arrival time
subscriptions[3].quantity: is for format number; line protocol names its own fields
subscriptions[3].time.path: is for format json; line protocol carries its timestamp at the end of each line
subscriptions[3].time.format: must be one of unix, unix_ms, unix_us, unix_ns for format lineprotocol: the precision of the lines' timestamps (default unix_ns)
subscriptions[4].time.format: must be unix, unix_ms, unix_us, unix_ns, rfc3339, or a Go layout containing the year 2006, such as "2006-01-02 15:04:05"
subscriptions[5].template: level 1 is "j" in the topic but "k" in the template
subscriptions[5].topic: duplicate topic "j" (first at subscriptions[4]); a broker keeps one subscription per filter
subscriptions[6].topic: "$share/g/x": shared subscriptions are not supported
subscriptions[7].template: {quantity} is used by no field: leave quantity out of the field it is for, or make that level +`
	if err.Error() != want {
		t.Errorf("New(bad) error:\n%v\nwant:\n%s", err, want)
	}

	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.TLS = &tls.Config{} }, "tls: needs an ssl:// or mqtts:// broker; with tcp:// nothing is encrypted"},
		{func(c *Config) { c.Broker = "tcp://user:pw@host" }, "broker: must not hold a user or password: use username and password_file"},
		{func(c *Config) { c.Broker = "tcp://host/path" }, "broker: must be tcp://, mqtt://, ssl:// or mqtts:// with a host"},
		{func(c *Config) { c.Broker = "" }, "broker: required"},
		{func(c *Config) { c.ClientID = "a\x00b" }, "client_id: must be UTF-8 without U+0000"},
		{func(c *Config) { c.Username = "u"; c.Password = strings.Repeat("p", 65536) }, "password: longer than 65535 bytes"},
		{func(c *Config) { c.KeepAlive = 1500 * time.Millisecond }, "keep_alive: must be whole seconds from 1s to 18h12m15s"},
		{func(c *Config) { c.MaxPayload = 268435456 }, "max_payload: must be between 1 and 268435455 bytes"},
		{func(c *Config) { c.Subscriptions = nil }, "subscriptions: required: list the topics to read"},
		{func(c *Config) { c.Subscriptions[0].Site = "fixed" }, "subscriptions[0].site: set site or {site} in the template, not both"},
		{func(c *Config) { c.Subscriptions[1].Site = "" }, "subscriptions[1].site: required: name a {site} level in the template, or set site here or as gateway.site"},
		{func(c *Config) { c.Subscriptions[0].Fields[0].Scale = math.NaN() }, "subscriptions[0].fields[0]: scale and offset must be finite"},
		{func(c *Config) { c.Subscriptions[0].Fields[0].Unit = "furlong" }, "subscriptions[0].fields[0].unit: "},
		{func(c *Config) {
			c.Subscriptions[0].Time = TimeSpec{Path: "ts", Format: TimeUnix, Location: time.Local}
		}, "subscriptions[0].time.location: must name a zone"},
		{func(c *Config) { c.Subscriptions[0].QoS = -1 }, "subscriptions[0].qos: must be 1"},
	} {
		cfg := validConfig()
		cfg.Subscriptions = append([]Subscription(nil), cfg.Subscriptions...)
		cfg.Subscriptions[0].Fields = append([]Field(nil), cfg.Subscriptions[0].Fields...)
		tc.mutate(&cfg)
		if _, err := New(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("New() = %v, want the one error %q...", err, tc.want)
		}
	}
}
func TestStrictClientID(t *testing.T) {
	for id, want := range map[string]bool{"envgateBox17": true, "envgate-box-17": false, "abcdefghijklmnopqrstuvwx": false, "a": true} {
		if got := strictClientID(id); got != want {
			t.Errorf("strictClientID(%q) = %v, want %v", id, got, want)
		}
	}
}
