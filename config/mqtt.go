package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time.LoadLocation must work on boxes without /usr/share/zoneinfo
	"unicode/utf8"

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
	DeadLetter    string         `yaml:"dead_letter"`   // default <state_dir>/deadletter/<name>.mqtt.log
	Subscriptions []Subscription `yaml:"subscriptions"` // at least one
}

// MQTTTLS configures TLS for an ssl:// or mqtts:// broker. Paths are used as written
// (relative ones from the working directory, like sinks' ca_file).
type MQTTTLS struct {
	CAFile             string `yaml:"ca_file"`              // PEM bundle of the CAs to trust; default: the system's
	CertFile           string `yaml:"cert_file"`            // client certificate (PEM) for mutual TLS; with KeyFile
	KeyFile            string `yaml:"key_file"`             // its private key (PEM); with CertFile
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
	FormatJSON         = "json"         // a JSON object; Fields says which values to read
	FormatNumber       = "number"       // the payload is one number, such as 23.5
	FormatLineProtocol = "lineprotocol" // InfluxDB line protocol; field keys are quantities
)

// TimeSpec formats other than Go layouts.
const (
	TimeUnix    = "unix"    // seconds since 1970, integer or fractional
	TimeUnixMS  = "unix_ms" // milliseconds since 1970
	TimeUnixUS  = "unix_us" // microseconds since 1970
	TimeUnixNS  = "unix_ns" // nanoseconds since 1970
	TimeRFC3339 = "rfc3339" // 2006-01-02T15:04:05Z07:00, fractional seconds allowed
)

// MQTT defaults, documented in docs/config.md.
const (
	DefaultKeepAlive    = 30 * time.Second // paho.mqtt.golang's default (tech-notes §6)
	DefaultMaxReconnect = 30 * time.Second
	DefaultMaxPayload   = 64 * KiB
	DefaultFormat       = FormatJSON
	DefaultQoS          = 1
	DefaultLocation     = "Asia/Shanghai"
)

// MQTT limits (MQTT 3.1.1 §3.1.2.10: keep alive is a 16-bit number of seconds;
// §2.2.3: the remaining length of a packet is at most 268,435,455 bytes; §1.5.3: a
// string, such as a topic filter or client id, is at most 65,535 bytes of UTF-8
// without U+0000).
const (
	maxKeepAlive  = 65535 * time.Second
	maxPayload    = 268435455 * B
	maxMQTTString = 65535
)

var (
	formats       = []string{FormatJSON, FormatNumber, FormatLineProtocol}
	timeFormats   = []string{TimeUnix, TimeUnixMS, TimeUnixUS, TimeUnixNS, TimeRFC3339}
	epochFormats  = []string{TimeUnix, TimeUnixMS, TimeUnixUS, TimeUnixNS}
	brokerSchemes = []string{"tcp", "mqtt", "ssl", "mqtts"}
	tlsSchemes    = []string{"ssl", "mqtts"}
	levelNames    = []string{"{site}", "{device}", "{quantity}"}
)

// defaults fills an mqtt source's unset fields; p is its path with a final ".".
func (m *MQTT) defaults(p string, g *Gateway, isSet func(string) bool) {
	setDefault(&m.KeepAlive, DefaultKeepAlive, isSet(p+"keep_alive"))
	setDefault(&m.MaxReconnect, DefaultMaxReconnect, isSet(p+"max_reconnect"))
	setDefault(&m.MaxPayload, DefaultMaxPayload, isSet(p+"max_payload"))
	if m.DeadLetter == "" && m.Name != "" {
		m.DeadLetter = filepath.Join(g.StateDir, "deadletter", m.Name+".mqtt.log")
	}
	for j := range m.Subscriptions {
		s := &m.Subscriptions[j]
		sp := p + indexPath("subscriptions", j) + "."
		if !hasLevel(s.Template, "{site}") {
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

// readPasswordFiles reads each mqtt source's password_file into its password, as
// readTokenFiles does for sinks.
func (c *Config) readPasswordFiles(dir string) problems {
	var ps problems
	for i := range c.MQTT {
		m := &c.MQTT[i]
		if m.PasswordFile == "" {
			continue
		}
		path := indexPath("mqtt", i) + ".password_file"
		if m.Password != "" {
			ps.add(path, 0, "set password or password_file, not both")
			continue
		}
		pw, err := readSecretFile(m.PasswordFile, dir, "password")
		if err != nil {
			ps.add(path, 0, "%v", err)
			continue
		}
		m.Password = Secret(pw)
	}
	return ps
}

// validateMQTT checks c.MQTT. names maps every device and source name seen so far to
// its path, so that names are unique across devices, buses, mqtt and pm. No message
// quotes the broker URL or the password.
func (c *Config) validateMQTT(names map[string]string) problems {
	var ps problems
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	clients := map[string]string{} // host:port and client id → path of the first source
	for i, m := range c.MQTT {
		p := indexPath("mqtt", i)
		before := len(ps)
		switch {
		case m.Name == "":
			add(p+".name", "required")
		case reading.CheckName(m.Name) != nil:
			add(p+".name", "%v", reading.CheckName(m.Name))
		default:
			if first, dup := names[m.Name]; dup {
				add(p+".name", "duplicate name %q (first at %s); devices and sources share one set of names", m.Name, first)
			} else {
				names[m.Name] = p
			}
		}

		u, brokerOK := brokerURL(m.Broker)
		switch {
		case m.Broker == "":
			add(p+".broker", "required")
		case !brokerOK:
			add(p+".broker", "must be tcp://, mqtt://, ssl:// or mqtts:// with a host and an optional port, such as ssl://broker.example:8883")
		case u.User != nil:
			add(p+".broker", "must not hold a user or password: use username and password_file")
		}
		switch {
		case m.ClientID == "":
			add(p+".client_id", "required: a name the broker keeps this box's session under, the same after every restart")
		case !mqttString(m.ClientID):
			add(p+".client_id", "must be UTF-8 without U+0000, at most %d bytes (MQTT 3.1.1 §1.5.3); at most 23 of 0-9, a-z, A-Z suits every broker", maxMQTTString)
		case brokerOK:
			key := strings.ToLower(u.Host) + " " + m.ClientID
			if first, dup := clients[key]; dup {
				add(p+".client_id", "duplicate client_id %q on this broker (first at %s); a second connection with the same id disconnects the first", m.ClientID, first)
			} else {
				clients[key] = p
			}
		}
		if !mqttString(m.Username) {
			add(p+".username", "must be UTF-8 without U+0000, at most %d bytes (MQTT 3.1.1 §1.5.3)", maxMQTTString)
		}
		if len(m.Password) > maxMQTTString {
			add(p+".password", "longer than %d bytes, the most MQTT can send (MQTT 3.1.1 §3.1.3.5)", maxMQTTString)
		}
		if m.Username == "" && (m.Password != "" || m.PasswordFile != "") {
			key := ".password"
			if m.PasswordFile != "" {
				key = ".password_file"
			}
			add(p+key, "needs username: MQTT sends a password only with a user name (MQTT 3.1.1 §3.1.2.9)")
		}
		if t := m.TLS; t != nil {
			if brokerOK && !slices.Contains(tlsSchemes, u.Scheme) {
				add(p+".tls", "needs an ssl:// or mqtts:// broker; with %s:// nothing is encrypted", u.Scheme)
			}
			switch {
			case t.CertFile != "" && t.KeyFile == "":
				add(p+".tls.key_file", "required with cert_file: mutual TLS needs the certificate and its key")
			case t.CertFile == "" && t.KeyFile != "":
				add(p+".tls.cert_file", "required with key_file: mutual TLS needs the certificate and its key")
			}
		}
		if m.KeepAlive < time.Second || m.KeepAlive > maxKeepAlive || m.KeepAlive%time.Second != 0 {
			add(p+".keep_alive", "must be whole seconds from 1s to %v (MQTT sends it as a 16-bit number of seconds)", maxKeepAlive)
		}
		if m.MaxReconnect < time.Second {
			add(p+".max_reconnect", "must be at least 1s")
		}
		if m.MaxPayload < 1 || m.MaxPayload > maxPayload {
			add(p+".max_payload", "must be between 1 and %d bytes, the largest MQTT packet", int64(maxPayload))
		}
		if len(m.Subscriptions) == 0 {
			add(p+".subscriptions", "required: list the topics to read")
		}
		topics := map[string]string{}
		for j, s := range m.Subscriptions {
			sp := p + indexPath(".subscriptions", j)
			ps = append(ps, s.validate(sp)...)
			if first, dup := topics[s.Topic]; dup && s.Topic != "" {
				add(sp+".topic", "duplicate topic %q (first at %s); a broker keeps one subscription per filter", s.Topic, first)
			} else {
				topics[s.Topic] = sp
			}
			if s.MaxDevices == 0 {
				add(sp+".max_devices", "must be 1 to %d", mqttsub.MaxMaxDevices)
			}
		}
		if len(ps) == before {
			// What the file says is sound; now what the driver will refuse at start.
			ps = append(ps, m.checkDriver(p, c.Gateway.SeriesExpiry)...)
		}
	}
	return ps
}

// Subscriber converts m into the configuration of its driver, the one envgate run
// builds the source from and that validation checks (mqttsub.Check), so that envgate
// check refuses exactly what run does. expiry is gateway.series_expiry. With a tls
// block, TLS is a bare *tls.Config: the caller builds the real one from the files.
func (m *MQTT) Subscriber(expiry time.Duration) (mqttsub.Config, error) {
	cfg := mqttsub.Config{
		Name: m.Name, Broker: m.Broker, ClientID: m.ClientID,
		Username: m.Username, Password: m.Password.Reveal(),
		KeepAlive: m.KeepAlive, MaxReconnect: m.MaxReconnect, MaxPayload: int(min(m.MaxPayload, maxPayload+1)),
		DeadLetter: m.DeadLetter, DeviceExpiry: expiry,
	}
	if m.TLS != nil {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	for _, s := range m.Subscriptions {
		sub := mqttsub.Subscription{Topic: s.Topic, Template: s.Template, Site: s.Site, Device: s.Device,
			Format: s.Format, Quantity: s.Quantity, Unit: s.Unit, QoS: byte(min(max(s.QoS, 0), 255)),
			Time:  mqttsub.TimeSpec{Path: s.Time.Path, Format: s.Time.Format},
			Sites: s.Sites, Devices: s.Devices, MaxDevices: s.MaxDevices}
		if s.Time.Location != "" {
			loc, err := time.LoadLocation(s.Time.Location)
			if err != nil {
				return mqttsub.Config{}, err
			}
			sub.Time.Location = loc
		}
		for _, f := range s.Fields {
			sub.Fields = append(sub.Fields, mqttsub.Field{Path: f.Path, Quantity: f.Quantity, Scale: f.Scale, Unit: f.Unit,
				Offset: f.Offset, Optional: f.Optional})
		}
		cfg.Subscriptions = append(cfg.Subscriptions, sub)
	}
	return cfg, nil
}

// checkDriver runs the driver's own check of the mqtt source at path p and reports
// its problems at their keys.
func (m *MQTT) checkDriver(p string, expiry time.Duration) problems {
	var ps problems
	cfg, err := m.Subscriber(expiry)
	if err == nil {
		err = mqttsub.Check(cfg)
	}
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
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

// brokerURL parses a broker address, reporting whether it has a known scheme, a host,
// no port or one from 1 to 65535, and nothing after that. The returned URL's Host has
// the port, the scheme's default (1883 or 8883) when none is written.
func brokerURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || !slices.Contains(brokerSchemes, u.Scheme) || u.Hostname() == "" {
		return nil, false
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, false
	}
	if u.Port() == "" {
		if strings.HasSuffix(u.Host, ":") {
			return nil, false
		}
		port := "1883" // IANA "mqtt"
		if slices.Contains(tlsSchemes, u.Scheme) {
			port = "8883" // IANA "secure-mqtt"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, validDial(u.Host)
}

// validate checks a subscription at path p.
func (s Subscription) validate(p string) problems {
	var ps problems
	add := func(key, format string, args ...any) { ps.add(p+"."+key, 0, format, args...) }

	topicOK := false
	if msg := checkTopicFilter(s.Topic); msg != "" {
		add("topic", "%s", msg)
	} else {
		topicOK = true
	}
	if s.Template != "" {
		for _, msg := range checkTemplate(s.Template, s.Topic, topicOK) {
			add("template", "%s", msg)
		}
	}
	formatOK := slices.Contains(formats, s.Format)
	if !formatOK {
		add("format", "must be one of %s", strings.Join(formats, ", "))
	}
	lp := s.Format == FormatLineProtocol

	for _, id := range []struct{ key, value, level, elsewhere string }{
		{"site", s.Site, "{site}", "site here or as gateway.site"},
		{"device", s.Device, "{device}", "device here"},
	} {
		switch {
		case hasLevel(s.Template, id.level) && id.value != "":
			add(id.key, "set %s or %s in the template, not both", id.key, id.level)
		case hasLevel(s.Template, id.level):
		case id.value == "" && lp:
			// Each line's site and device tags name them.
		case id.value == "":
			add(id.key, "required: name a %s level in the template, or set %s", id.level, id.elsewhere)
		default:
			if err := reading.CheckName(id.value); err != nil {
				add(id.key, "%v", err)
			}
		}
	}

	quantityLevel := hasLevel(s.Template, "{quantity}")
	switch s.Format {
	case FormatNumber:
		switch {
		case quantityLevel && s.Quantity != "":
			add("quantity", "set quantity or {quantity} in the template, not both")
		case quantityLevel:
		case s.Quantity == "":
			add("quantity", "required for format number: name a {quantity} level in the template, or set quantity here")
		default:
			if msg := checkQuantity(s.Quantity); msg != "" {
				add("quantity", "%s", msg)
			} else if s.Unit != "" {
				if err := reading.CheckUnit(s.Quantity, s.Unit); err != nil {
					add("unit", "%v", err)
				}
			}
		}
		if len(s.Fields) > 0 {
			add("fields", "is for format json; a number payload is one value")
		}
	case FormatJSON:
		if s.Quantity != "" {
			add("quantity", "is for format number; json fields name their own quantities")
		}
		if s.Unit != "" {
			add("unit", "is for format number; json fields give their own unit")
		}
		if len(s.Fields) == 0 {
			add("fields", "required for format json: list at least one field")
		}
		ps = append(ps, s.validateFields(p, quantityLevel)...)
	case FormatLineProtocol:
		if s.Quantity != "" {
			add("quantity", "is for format number; line protocol names its own fields")
		}
		if s.Unit != "" {
			add("unit", "is for format number; line-protocol values are in the catalog units")
		}
		if quantityLevel {
			add("template", "{quantity} is for formats number and json; line protocol names its own fields")
		}
		if len(s.Fields) > 0 {
			add("fields", "is for format json; line protocol names its own fields, which must be catalog quantities")
		}
	}
	if formatOK {
		ps = append(ps, s.Time.validate(p+".time", s.Format)...)
	}
	if s.QoS != 1 {
		add("qos", "must be 1: QoS 1 keeps messages at the broker until the gateway has them on disk; QoS 0 could lose them")
	}
	return ps
}

// validateFields checks the fields of a json subscription at path p. quantityLevel
// reports whether the template names a {quantity} level, which one field may take as
// its quantity by leaving quantity out.
func (s Subscription) validateFields(p string, quantityLevel bool) problems {
	var ps problems
	quantities := map[string]string{} // quantity, or "" for {quantity} → path of its field
	for k, f := range s.Fields {
		fp := p + indexPath(".fields", k)
		if msg := checkJSONPath(f.Path); msg != "" {
			ps.add(fp+".path", 0, "%s", msg)
		}
		switch first, dup := quantities[f.Quantity]; {
		case f.Quantity == "" && !quantityLevel:
			ps.add(fp+".quantity", 0, "required (or name a {quantity} level in the template, which one field may take)")
		case f.Quantity == "" && dup:
			ps.add(fp+".quantity", 0, "required: only one field takes {quantity} from the topic (%s does)", first)
		case f.Quantity != "" && checkQuantity(f.Quantity) != "":
			ps.add(fp+".quantity", 0, "%s", checkQuantity(f.Quantity))
		case dup:
			ps.add(fp+".quantity", 0, "duplicate quantity %q (first at %s); a message gives each quantity once", f.Quantity, first)
		default:
			quantities[f.Quantity] = fp
		}
		if f.Scale == 0 {
			ps.add(fp+".scale", 0, "must not be 0 (every value would be the offset)")
		}
		if f.Unit != "" && f.Quantity != "" && checkQuantity(f.Quantity) == "" {
			if err := reading.CheckUnit(f.Quantity, f.Unit); err != nil {
				ps.add(fp+".unit", 0, "%v", err)
			}
		}
	}
	if _, used := quantities[""]; quantityLevel && !used && len(s.Fields) > 0 {
		ps.add(p+".template", 0, "{quantity} is used by no field: leave quantity out of the field it is for, or make that level +")
	}
	return ps
}

// validate checks a time block at path p of a subscription of the given format.
func (t TimeSpec) validate(p, format string) problems {
	var ps problems
	add := func(key, format string, args ...any) { ps.add(p+"."+key, 0, format, args...) }
	switch {
	case format == FormatNumber:
		if t != (TimeSpec{}) {
			ps.add(p, 0, "is for formats json and lineprotocol: a number payload has only its value, and its reading gets the arrival time")
		}
		return ps
	case format == FormatLineProtocol:
		if t.Path != "" {
			add("path", "is for format json; line protocol carries its timestamp at the end of each line")
		}
		if t.Format != "" && !slices.Contains(epochFormats, t.Format) {
			add("format", "must be one of %s for format lineprotocol: the precision of the lines' timestamps (default unix_ns)", strings.Join(epochFormats, ", "))
		}
	case t.Path == "":
		if t.Format != "" {
			add("format", "needs time.path, the JSON key holding the time (without it, readings get the arrival time)")
		}
	default:
		if msg := checkJSONPath(t.Path); msg != "" {
			add("path", "%s", msg)
		}
		switch {
		case t.Format == "":
			add("format", "required with path: %s, or a Go layout such as \"2006-01-02 15:04:05\"", strings.Join(timeFormats, ", "))
		case slices.Contains(timeFormats, t.Format):
		case !strings.Contains(t.Format, "2006"):
			add("format", "must be %s, or a Go layout containing the year 2006, such as \"2006-01-02 15:04:05\"", strings.Join(timeFormats, ", "))
		case !layoutToSecond(t.Format):
			add("format", "a Go layout must give the year, month, day, hour (15, or 3 with PM), minute and second, such as \"2006-01-02 15:04:05\"")
		}
	}
	switch {
	case t.Location == "":
	case t.Path == "":
		add("location", "needs time.path: it is the zone of the times read from there")
	case t.Location == "Local":
		add("location", "must name a zone such as Asia/Shanghai or UTC; Local depends on the box's settings")
	default:
		if _, err := time.LoadLocation(t.Location); err != nil {
			add("location", "unknown time zone %q (an IANA name such as Asia/Shanghai or UTC)", t.Location)
		}
	}
	return ps
}

// layoutToSecond reports whether a Go time layout reads back a time to the second: a
// reference instant in the afternoon (to catch "03" without "PM") survives formatting
// and parsing.
func layoutToSecond(layout string) bool {
	ref := time.Date(2026, 11, 28, 13, 4, 5, 0, time.UTC)
	t, err := time.Parse(layout, ref.Format(layout))
	return err == nil && t.Year() == ref.Year() && t.YearDay() == ref.YearDay() &&
		t.Hour() == ref.Hour() && t.Minute() == ref.Minute() && t.Second() == ref.Second()
}

// maxJSONIndex bounds array indexes in JSON paths (a payload is at most max_payload).
const maxJSONIndex = 1 << 20

// checkJSONPath explains why p is not a path into a JSON document, or returns "": keys
// separated by dots, each followed by any number of array indexes [i]; the path may
// start with an index ("[0].value"). Keys cannot contain '.', '[' or ']'.
func checkJSONPath(p string) string {
	const want = "must be keys separated by dots, with [i] for array elements, such as data.pm25 or sensors[0].value"
	if p == "" {
		return "required"
	}
	for i, part := range strings.Split(p, ".") {
		key, rest := part, ""
		if k := strings.IndexByte(part, '['); k >= 0 {
			key, rest = part[:k], part[k:]
		}
		if strings.Contains(key, "]") || (key == "" && (rest == "" || i > 0)) {
			return want
		}
		for rest != "" {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return want
			}
			digits := rest[1:end]
			if digits == "" || strings.Trim(digits, "0123456789") != "" || len(digits) > 7 {
				return want
			}
			if n, _ := strconv.Atoi(digits); n > maxJSONIndex {
				return fmt.Sprintf("array index %s is larger than %d", digits, maxJSONIndex)
			}
			rest = rest[end+1:]
			if rest != "" && rest[0] != '[' {
				return want
			}
		}
	}
	return ""
}

// checkTopicFilter explains why f is not an MQTT topic filter (MQTT 3.1.1 §4.7: +
// fills one whole level, # the last whole level; §4.7.3: at least one character), or
// returns "".
func checkTopicFilter(f string) string {
	switch {
	case f == "":
		return "required"
	case !mqttString(f):
		return fmt.Sprintf("must be UTF-8 without U+0000, at most %d bytes", maxMQTTString)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case slices.Contains(levelNames, l):
			return fmt.Sprintf("level %d is %s: the topic is an MQTT filter, so write + there and name the level in template", i+1, l)
		case l == "+", l == "#" && i == len(levels)-1:
		case strings.Contains(l, "#"):
			return "# must be the last level, on its own, as in env/#"
		case strings.Contains(l, "+"):
			return "+ must be a whole level, as in env/+/pm25"
		}
	}
	return ""
}

// checkTemplate explains what is wrong with a template: its syntax and, when topicOK,
// whether it has the levels of its topic filter. The template must fit every topic
// the filter delivers, so that no message is dead-lettered for its topic alone: level
// by level, a literal matches the same literal, a + of the topic needs a name or +,
// and a # of the topic needs a # at the same level of the template. A final # of the
// template may also match no level at all.
func checkTemplate(tmpl, topic string, topicOK bool) []string {
	var msgs []string
	levels := strings.Split(tmpl, "/")
	seen := map[string]bool{}
	for i, l := range levels {
		switch {
		case slices.Contains(levelNames, l):
			if seen[l] {
				msgs = append(msgs, fmt.Sprintf("%s appears more than once", l))
			}
			seen[l] = true
		case strings.HasPrefix(l, "{") && strings.HasSuffix(l, "}") && strings.Count(l, "{")+strings.Count(l, "}") == 2:
			msgs = append(msgs, fmt.Sprintf("unknown name %s at level %d (known: %s)", l, i+1, strings.Join(levelNames, ", ")))
		case strings.ContainsAny(l, "{}"):
			msgs = append(msgs, fmt.Sprintf("level %d (%q): a name such as {device} must be a whole level", i+1, l))
		case l == "+", l == "#" && i == len(levels)-1:
		case strings.Contains(l, "#"):
			msgs = append(msgs, "# must be the last level, on its own, as in env/{site}/#")
		case strings.Contains(l, "+"):
			msgs = append(msgs, "+ must be a whole level, as in env/+/{device}")
		}
	}
	if len(msgs) > 0 || !topicOK {
		return msgs
	}
	tl := strings.Split(topic, "/")
	for i := 0; i < len(levels) && i < len(tl); i++ {
		l, t := levels[i], tl[i]
		switch {
		case l == "#" && t == "#":
			return nil
		case t == "#":
			return []string{fmt.Sprintf("level %d of the topic is #, which matches any number of levels, so the template needs # there too", i+1)}
		case l == "#":
			return []string{fmt.Sprintf("level %d of the template is # but the topic has %q there; the template has the topic's levels", i+1, t)}
		case l == t, l == "+", slices.Contains(levelNames, l):
			// A name may also stand for a literal level of the topic: it always
			// gives the same value, which is harmless.
		case t == "+":
			return []string{fmt.Sprintf("level %d of the topic is +, so the template needs a name or + there, not %q", i+1, l)}
		default:
			return []string{fmt.Sprintf("level %d is %q in the topic but %q in the template", i+1, t, l)}
		}
	}
	switch {
	case len(levels) == len(tl), len(levels) == len(tl)+1 && levels[len(levels)-1] == "#":
		return nil
	case tl[len(tl)-1] == "#":
		return []string{fmt.Sprintf("level %d of the topic is #, which matches any number of levels, so the template needs # there too", len(tl))}
	}
	return []string{fmt.Sprintf("has %d levels but the topic has %d; the template is the topic with some levels named", len(levels), len(tl))}
}

// mqttString reports whether s can be sent as an MQTT string (MQTT 3.1.1 §1.5.3).
func mqttString(s string) bool {
	return len(s) <= maxMQTTString && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// hasLevel reports whether the template has a level named name, such as "{site}".
func hasLevel(tmpl, name string) bool {
	return tmpl != "" && slices.Contains(strings.Split(tmpl, "/"), name)
}
