package config

import (
	"crypto/tls"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // time.LoadLocation must work on boxes without /usr/share/zoneinfo

	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/gateway/reading"
)

// MQTT is one connection to an MQTT broker (3.1.1) and the topics read from it. The
// gateway keeps a persistent session under a stable client_id, and acknowledges a
// QoS 1 message only after the readings it carries are fsynced into the buffer;
// messages it cannot decode are appended to DeadLetter. cmd builds the TLS
// configuration from TLS and converts the rest into drivers/mqttsub's Config.
type MQTT struct {
	Name          string         `yaml:"name"`          // required, CheckName, unique among devices, Modbus devices, mqtt sources and pm sensors
	Broker        string         `yaml:"broker"`        // required: tcp:// or mqtt://host[:port] (1883), ssl:// or mqtts://host[:port] (8883)
	ClientID      string         `yaml:"client_id"`     // required; stable across restarts; at most 23 of [0-9A-Za-z] for strict brokers
	Username      string         `yaml:"username"`      // optional
	Password      Secret         `yaml:"password"`      // optional; needs Username
	PasswordFile  string         `yaml:"password_file"` // read the password from this file; not both password and password_file
	TLS           *MQTTTLS       `yaml:"tls"`           // only with ssl:// or mqtts://; nil there means the system's roots
	KeepAlive     time.Duration  `yaml:"keep_alive"`    // default 30s; whole seconds, 1s..65535s
	MaxReconnect  time.Duration  `yaml:"max_reconnect"` // longest wait between reconnection attempts; default 30s; >= 1s
	MaxPayload    ByteSize       `yaml:"max_payload"`   // larger messages are malformed; default 64KiB; 1 to 268435455 bytes
	MaxInflight   int            `yaml:"max_inflight"`  // the broker's in-flight window for this client; default 20 (mosquitto's); 1..8192
	DeadLetter    string         `yaml:"dead_letter"`   // default <state_dir>/deadletter/<name>.mqtt.log
	Subscriptions []Subscription `yaml:"subscriptions"` // at least one
}

// MQTTTLS configures TLS for an ssl:// or mqtts:// broker. Paths are used as written
// (relative ones from the working directory, like sinks' ca_file).
type MQTTTLS struct {
	CAFile             string `yaml:"ca_file"`              // PEM bundle of the CAs to trust; default: the system's
	CertFile           string `yaml:"cert_file"`            // client certificate (PEM) for mutual TLS; with KeyFile
	KeyFile            string `yaml:"key_file"`             // its private key (PEM); with CertFile
	ServerName         string `yaml:"server_name"`          // the name the broker's certificate must have; default the broker URL's host
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // for testing only
}

// Subscription is one topic filter and how its messages become readings. The site,
// device and (for formats number and json) quantity of a reading come from the levels
// of the message's topic that Template names, or else from Site, Device and Quantity
// (or the field's quantity). In line protocol, a line's site and device tags override
// both, so there Site and Device may be left empty.
type Subscription struct {
	Topic    string   `yaml:"topic"`    // required: an MQTT topic filter, with + and # wildcards
	Template string   `yaml:"template"` // optional: Topic with some levels named {site}, {device} or {quantity}
	Site     string   `yaml:"site"`     // without {site} in Template; default gateway.site; required then, except for lineprotocol
	Device   string   `yaml:"device"`   // without {device} in Template; required then, except for lineprotocol
	Format   string   `yaml:"format"`   // json|number|lineprotocol; default json
	Fields   []Field  `yaml:"fields"`   // json: at least one; otherwise none
	Quantity string   `yaml:"quantity"` // number, without {quantity} in Template: the quantity of every value
	Unit     string   `yaml:"unit"`     // number: the payload's unit, converted to the catalog unit; default the catalog unit
	Time     TimeSpec `yaml:"time"`     // where a message's measurement time is; zero: its arrival time
	QoS      int      `yaml:"qos"`      // 1 (the default and only value): QoS 0 could lose messages the gateway never saw
	// Sites and Devices are allow-lists of path.Match patterns for the names a message
	// gives; empty allows any. MaxDevices bounds the devices taken at a time (default
	// mqttsub.DefaultMaxDevices); see drivers/mqttsub.
	Sites      []string `yaml:"sites"`
	Devices    []string `yaml:"devices"`
	MaxDevices int      `yaml:"max_devices"`
}

// Field is one value of a JSON message: where it is and which quantity it measures.
// The reading's value is raw × Scale + Offset.
type Field struct {
	Path     string  `yaml:"path"`     // required: keys separated by dots, [i] for array elements: data.pm25, sensors[0].value
	Quantity string  `yaml:"quantity"` // a catalog quantity (reading.Lookup); required unless this is the one field taking {quantity} from the topic
	Scale    float64 `yaml:"scale"`    // default 1; not 0
	Offset   float64 `yaml:"offset"`   // default 0
	Unit     string  `yaml:"unit"`     // unit of raw × scale + offset, converted to the catalog unit; default the catalog unit
	Optional bool    `yaml:"optional"` // a message without this path is not malformed
}

// TimeSpec says where a message carries its measurement time. With Path empty the
// readings of format json get the time the message arrived. For format lineprotocol
// only Format may be set: the precision of the lines' timestamps.
type TimeSpec struct {
	Path     string `yaml:"path"`     // json: where the timestamp is, as Field.Path
	Format   string `yaml:"format"`   // unix|unix_ms|unix_us|unix_ns|rfc3339 or a Go layout to the second; required with Path
	Location string `yaml:"location"` // IANA zone for a layout without an offset; default Asia/Shanghai when Path is set
}

// Subscription formats.
const (
	FormatJSON         = mqttsub.FormatJSON         // a JSON object; Fields says which values to read
	FormatNumber       = mqttsub.FormatNumber       // the payload is one number, such as 23.5
	FormatLineProtocol = mqttsub.FormatLineProtocol // InfluxDB line protocol; field keys are quantities
)

// TimeSpec formats other than Go layouts.
const (
	TimeUnix    = mqttsub.TimeUnix    // seconds since 1970, integer or fractional
	TimeUnixMS  = mqttsub.TimeUnixMs  // milliseconds since 1970
	TimeUnixUS  = mqttsub.TimeUnixUs  // microseconds since 1970
	TimeUnixNS  = mqttsub.TimeUnixNs  // nanoseconds since 1970
	TimeRFC3339 = mqttsub.TimeRFC3339 // 2006-01-02T15:04:05Z07:00, fractional seconds allowed
)

// MQTT defaults, documented in docs/config.md.
const (
	DefaultKeepAlive    = 30 * time.Second // paho.mqtt.golang's default (docs/engineering-notes.md §6)
	DefaultMaxReconnect = 30 * time.Second
	DefaultMaxPayload   = 64 * KiB
	DefaultMaxInflight  = mqttsub.DefaultMaxInflight // mosquitto's max_inflight_messages default
	DefaultFormat       = FormatJSON
	DefaultQoS          = 1
	DefaultLocation     = "Asia/Shanghai"
)

// defaults fills an mqtt source's unset fields; p is its path with a final ".".
func (m *MQTT) defaults(p string, g *Gateway, isSet func(string) bool) {
	setDefault(&m.KeepAlive, DefaultKeepAlive, isSet(p+"keep_alive"))
	setDefault(&m.MaxReconnect, DefaultMaxReconnect, isSet(p+"max_reconnect"))
	setDefault(&m.MaxPayload, DefaultMaxPayload, isSet(p+"max_payload"))
	setDefault(&m.MaxInflight, DefaultMaxInflight, isSet(p+"max_inflight"))
	if m.DeadLetter == "" && m.Name != "" {
		m.DeadLetter = filepath.Join(g.StateDir, "deadletter", m.Name+".mqtt.log")
	}
	for j := range m.Subscriptions {
		s := &m.Subscriptions[j]
		sp := p + indexPath("subscriptions", j) + "."
		if !slices.Contains(strings.Split(s.Template, "/"), "{site}") {
			setDefault(&s.Site, g.Site, false)
		}
		setDefault(&s.Format, DefaultFormat, false)
		setDefault(&s.QoS, DefaultQoS, isSet(sp+"qos"))
		setDefault(&s.MaxDevices, mqttsub.DefaultMaxDevices, isSet(sp+"max_devices"))
		if s.Time.Path != "" {
			setDefault(&s.Time.Location, DefaultLocation, false)
		}
		for k := range s.Fields {
			setDefault(&s.Fields[k].Scale, DefaultScale, isSet(sp+indexPath("fields", k)+".scale"))
		}
	}
}

// validateMQTT checks c.MQTT. Every rule of one source alone is the driver's
// (mqttsub.Check on the configuration envgate run builds, see Subscriber), so that
// envgate check refuses exactly what run does; here are only the rules that need the
// whole file: names unique across devices and sources (names maps every name seen so
// far to its path), client ids unique per broker, TLS file pairs, and zeros written
// in the file, which the driver would take for "the default". No message quotes the
// broker URL or the password.
func (c *Config) validateMQTT(names map[string]string) problems {
	var ps problems
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	clients := map[string]string{} // host:port and client id → path of the first source
	for i, m := range c.MQTT {
		p := indexPath("mqtt", i)
		if first, dup := names[m.Name]; dup && m.Name != "" {
			add(p+".name", "duplicate name %q (first at %s); devices and sources share one set of names", m.Name, first)
		} else if reading.CheckName(m.Name) == nil {
			names[m.Name] = p
		}
		if addr, ok := mqttsub.BrokerAddress(m.Broker); ok && m.ClientID != "" {
			key := strings.ToLower(addr) + " " + m.ClientID
			if first, dup := clients[key]; dup {
				add(p+".client_id", "duplicate client_id %q on this broker (first at %s); a second connection with the same id disconnects the first", m.ClientID, first)
			} else {
				clients[key] = p
			}
		}
		if t := m.TLS; t != nil {
			switch {
			case t.CertFile != "" && t.KeyFile == "":
				add(p+".tls.key_file", "required with cert_file: mutual TLS needs the certificate and its key")
			case t.CertFile == "" && t.KeyFile != "":
				add(p+".tls.cert_file", "required with key_file: mutual TLS needs the certificate and its key")
			}
		}
		zero := func(path string, isZero bool, def any) {
			if isZero {
				add(path, "must not be 0 (leave it out for the default %v)", def)
			}
		}
		zero(p+".keep_alive", m.KeepAlive == 0, DefaultKeepAlive)
		zero(p+".max_reconnect", m.MaxReconnect == 0, DefaultMaxReconnect)
		zero(p+".max_payload", m.MaxPayload == 0, DefaultMaxPayload)
		zero(p+".max_inflight", m.MaxInflight == 0, DefaultMaxInflight)
		for j, s := range m.Subscriptions {
			sp := p + indexPath(".subscriptions", j)
			if s.QoS == 0 {
				add(sp+".qos", "must not be 0: QoS 0 could lose messages the gateway never saw (leave it out for the default 1)")
			}
			zero(sp+".max_devices", s.MaxDevices == 0, mqttsub.DefaultMaxDevices)
			for k, f := range s.Fields {
				if f.Scale == 0 {
					add(sp+indexPath(".fields", k)+".scale", "must not be 0 (every value would be the offset)")
				}
			}
		}
		ps = append(ps, m.checkDriver(p, c.Gateway.SeriesExpiry)...)
	}
	return ps
}

// Subscriber converts m into the configuration of its driver, the one envgate run
// builds the source from and that validation checks (mqttsub.Check), so that envgate
// check refuses exactly what run does. expiry is gateway.series_expiry. With a tls
// block, TLS is a bare *tls.Config: the caller builds the real one from the files.
func (m *MQTT) Subscriber(expiry time.Duration) (mqttsub.Config, error) {
	cfg, ps := m.subscriber("mqtt", expiry)
	return cfg, ps.err()
}

// subscriber is Subscriber, reporting a time zone it cannot load at its key below
// path p (and leaving that zone out).
func (m *MQTT) subscriber(p string, expiry time.Duration) (mqttsub.Config, problems) {
	var ps problems
	cfg := mqttsub.Config{
		Name: m.Name, Broker: m.Broker, ClientID: m.ClientID,
		Username: m.Username, Password: m.Password.Reveal(),
		KeepAlive: m.KeepAlive, MaxReconnect: m.MaxReconnect,
		// int is 32 bits on ARMv7: clamp, and let the driver refuse what is too large.
		MaxPayload: int(min(m.MaxPayload, math.MaxInt32)),
		DeadLetter: m.DeadLetter, DeviceExpiry: expiry, MaxInflight: m.MaxInflight,
	}
	if m.TLS != nil {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	for j, s := range m.Subscriptions {
		sub := mqttsub.Subscription{Topic: s.Topic, Template: s.Template, Site: s.Site, Device: s.Device,
			Format: s.Format, Quantity: s.Quantity, Unit: s.Unit, QoS: s.QoS,
			Time:  mqttsub.TimeSpec{Path: s.Time.Path, Format: s.Time.Format},
			Sites: s.Sites, Devices: s.Devices, MaxDevices: s.MaxDevices}
		if s.Time.Location != "" {
			loc, err := time.LoadLocation(s.Time.Location)
			if err != nil {
				ps.add(p+indexPath(".subscriptions", j)+".time.location", 0,
					"unknown time zone %q (an IANA name such as Asia/Shanghai or UTC)", s.Time.Location)
			}
			sub.Time.Location = loc
		}
		for _, f := range s.Fields {
			sub.Fields = append(sub.Fields, mqttsub.Field{Path: f.Path, Quantity: f.Quantity, Scale: f.Scale, Unit: f.Unit,
				Offset: f.Offset, Optional: f.Optional})
		}
		cfg.Subscriptions = append(cfg.Subscriptions, sub)
	}
	return cfg, ps
}

// checkDriver runs the driver's own check of the mqtt source at path p and reports
// its problems at their keys.
func (m *MQTT) checkDriver(p string, expiry time.Duration) problems {
	cfg, ps := m.subscriber(p, expiry)
	for _, e := range flatten(mqttsub.Check(cfg)) {
		var fe *mqttsub.FieldError
		if !errors.As(e, &fe) {
			ps.add(p, 0, "%v", e)
			continue
		}
		field := fe.Field
		if field == "password" && m.PasswordFile != "" {
			field = "password_file"
		}
		ps.add(p+"."+field, 0, "%s", fe.Msg)
	}
	return ps
}
