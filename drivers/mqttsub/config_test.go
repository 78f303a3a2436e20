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
	for _, want := range []string{
		"name: character ' ' not allowed",
		`broker: "http://x": scheme must be tcp, ssl, mqtt or mqtts`,
		"client_id: must be set",
		"password: set without username",
		"keep_alive: 1ms: want 1s to",
		"max_reconnect: -1ns",
		"max_payload: -1",
		`subscriptions[0].topic: "a/#/b": "#" must be the last level`,
		"subscriptions[0].template: {site} appears twice",
		`subscriptions[0].format: "xml"`,
		"subscriptions[0].qos: 2",
		"subscriptions[1].template: has 4 levels but the topic filter has 3",
		`subscriptions[1].fields[0].path: "a..b": empty key`,
		`subscriptions[1].fields[0].quantity: "pm2.5" is not a catalog quantity`,
		"subscriptions[1].fields[2].quantity: pm25 is also fields[1]",
		"subscriptions[1].time.format: must be set with time.path",
		"subscriptions[2].time: a number payload has no timestamp",
		"subscriptions[2].quantity: must be set",
		"subscriptions[3].quantity: line-protocol field keys are the quantities",
		"subscriptions[3].time.path: line protocol carries its own timestamp",
		`subscriptions[3].time.format: "unix_s"`,
		`subscriptions[4].time.format: "15:04" is not a named format`,
		`subscriptions[5].template: level 1 is "k" but the topic filter has "j"`,
		`subscriptions[5].topic: "j" is also subscriptions[4]`,
		"subscriptions[6].topic: \"$share/g/x\": shared subscriptions are not supported",
		"subscriptions[7].template: {quantity} is not used",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad) error lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("error:\n%v", err)
	}

	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.TLS = &tls.Config{} }, "TLS is configured but the scheme is plain tcp"},
		{func(c *Config) { c.Broker = "tcp://user:pw@host" }, "put credentials in username and password"},
		{func(c *Config) { c.Broker = "tcp://host/path" }, "want scheme://host[:port]"},
		{func(c *Config) { c.Subscriptions = nil }, "subscriptions: must not be empty"},
		{func(c *Config) { c.Subscriptions[0].Site = "fixed" }, `subscriptions[0].site: "fixed" is set but the template has {site}`},
		{func(c *Config) { c.Subscriptions[1].Site = "" }, "subscriptions[1].site: must not be empty (or put {site} in the template)"},
		{func(c *Config) { c.Subscriptions[0].Fields[0].Scale = math.NaN() }, "scale and offset must be finite"},
	} {
		cfg := validConfig()
		cfg.Subscriptions = append([]Subscription(nil), cfg.Subscriptions...)
		cfg.Subscriptions[0].Fields = append([]Field(nil), cfg.Subscriptions[0].Fields...)
		tc.mutate(&cfg)
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New() = %v, want error containing %q", err, tc.want)
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
