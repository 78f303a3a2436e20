package mqttsub

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/envgate/envgate/gateway/reading"
)

// Config describes one MQTT source: one broker connection and its subscriptions.
type Config struct {
	Name string // source name, for logs and metrics

	// Broker is tcp://host:1883 or ssl://host:8883 (mqtt:// and mqtts:// are synonyms).
	// The port defaults to 1883 or 8883.
	Broker string

	// ClientID identifies the persistent session on the broker; it is required and must
	// stay the same across restarts, or messages queued while the gateway was away are
	// lost. Keep it to at most 23 characters of [0-9A-Za-z]: that is all MQTT 3.1.1
	// obliges a broker to accept (MQTT-3.1.3-5). Two clients with the same ID kick each
	// other off the broker in turn, which looks like random disconnects: never share an
	// ID between gateways or with a test client.
	ClientID string

	Username string
	Password string // from config, possibly read from password_file by the config package

	// TLS is used for ssl:// and mqtts:// brokers (CA, client certificate for mTLS), built
	// by the caller; nil there means the system roots. It must be nil for tcp://.
	TLS *tls.Config

	Subscriptions []Subscription

	KeepAlive    time.Duration // MQTT keep-alive; default 30s, 1s..18h
	MaxReconnect time.Duration // cap of the reconnect back-off; default 30s
	// MaxPayload is in bytes; default 64 KiB. Larger messages are malformed ("oversize"):
	// only their first 256 bytes are kept, for the dead-letter file. paho reads a whole
	// packet into memory before the subscriber sees it, so the broker's own limit
	// (mosquitto: message_size_limit) is what bounds the memory a huge message takes.
	MaxPayload int

	// DeadLetter is a file to which each malformed message is appended, one line each
	// (see Subscriber.Run); created with its parent directories on first use. Empty:
	// malformed messages are only counted and logged.
	DeadLetter string

	// DeviceExpiry is how long a device may be silent before it no longer counts toward
	// its subscription's MaxDevices; 0 means DefaultDeviceExpiry. Use the metrics'
	// series expiry, so that a device that stops counting has left /metrics too.
	DeviceExpiry time.Duration

	Now func() time.Time // arrival clock; nil means time.Now
}

// Subscription is one topic filter and how its messages become readings.
type Subscription struct {
	// Topic is the MQTT filter subscribed to, with + and # wildcards, e.g. "env/+/+/#".
	Topic string

	// Template maps topic levels to identifiers, e.g. "env/{site}/{device}/#" or
	// "lora/{device}/{quantity}". {site}, {device} and {quantity} capture one level each
	// (at most once); "+" ignores one level; "#", last, matches the remaining levels (or
	// none); any other level is literal and must match. Empty means Topic itself.
	Template string

	// Site and Device are the fixed identifiers when the template lacks {site} or
	// {device}. For line protocol, the tags site and device override both.
	Site, Device string

	Format string // FormatJSON (also ""), FormatNumber or FormatLineProtocol

	// Fields are read from each JSON payload, one reading each.
	Fields []Field

	// Quantity is the catalog quantity of a number payload when the template lacks
	// {quantity}.
	Quantity string

	// Unit is the unit of a number payload, converted once to the catalog unit of its
	// quantity (see Field.Unit). Empty means the catalog unit.
	Unit string

	Time TimeSpec // where the timestamp comes from

	// QoS is the subscription's maximum QoS. Only 1 is offered, and the zero value means
	// it: a QoS 0 message is never acknowledged, so the broker neither delivers it again
	// nor queues it while the gateway is away, which defeats envgate's guarantee. Messages
	// a publisher sends at QoS 0 still arrive, at QoS 0 (the broker delivers at the lower
	// of the two QoS), with that weaker guarantee: one not yet durable when the gateway
	// stops, or arriving while the subscriber holds too much, is lost. Any value other
	// than 0 or 1 is an error.
	QoS byte

	// Sites and Devices are allow-lists of the names a message may give (from the
	// topic, a line-protocol tag or the fixed Site and Device): patterns of Go's
	// path.Match (* any characters, ? one, [a-z] one of a set). Empty allows any valid
	// name. A message naming another is malformed (KindUnlisted).
	Sites, Devices []string

	// MaxDevices bounds the devices (a site and device name pair) the subscription
	// takes readings from at a time: a message naming one more is malformed
	// (KindDeviceLimit), until a device silent for Config.DeviceExpiry frees its place.
	// 0 means DefaultMaxDevices.
	MaxDevices int
}

// Formats of Subscription.Format.
const (
	FormatJSON         = "json"         // a JSON document; Fields select the values
	FormatNumber       = "number"       // a plain decimal number, e.g. "35.2"
	FormatLineProtocol = "lineprotocol" // InfluxDB line protocol; field keys are catalog quantities
)

// Field is one value read from a JSON payload.
type Field struct {
	// Path is a dotted path into the JSON document, with [i] for array elements:
	// "data.pm25", "object.sensors[0].value", "[0].v". Keys containing '.', '[' or ']'
	// cannot be addressed.
	Path string

	// Quantity is the catalog quantity; empty takes {quantity} from the topic (then only
	// one field may leave it empty).
	Quantity string

	// Value = raw × Scale + Offset, in Unit. Scale 0 means 1.
	Scale, Offset float64

	// Unit is the unit of the value after Scale and Offset, converted once to the
	// quantity's catalog unit (reading.Convert: ppb → ug/m3, ug/L → mg/L, degF → degC, …).
	// Empty means the catalog unit.
	Unit string

	// Optional fields may be absent (or null): the reading is skipped. A required
	// field that is absent makes the whole message malformed. A message in which no
	// field at all is present is malformed either way.
	Optional bool
}

// TimeSpec says where a message's timestamp comes from. All readings of a JSON or
// number message share it; each line-protocol entry has its own.
type TimeSpec struct {
	// Path (JSON only) is a dotted path like Field.Path; empty means the arrival time.
	Path string

	// Format is TimeUnix (seconds, may be fractional), TimeUnixMs, TimeUnixUs,
	// TimeUnixNs, TimeRFC3339 (with or without fractional seconds), or a Go layout such
	// as "2006-01-02 15:04:05" read in Location. Required with Path. For line protocol it
	// is the timestamp precision, one of the unix formats; default TimeUnixNs.
	Format string

	// Location is the zone of layouts without one; nil means Asia/Shanghai (UTC+8, no
	// daylight saving since 1991).
	Location *time.Location
}

// Defaults and limits of Config.
const (
	defaultKeepAlive    = 30 * time.Second
	defaultMaxReconnect = 30 * time.Second
	defaultMaxPayload   = 64 << 10
	// MQTT 3.1.1 §3.1.2.10: keep-alive is a 16-bit count of seconds.
	maxKeepAlive = 65535 * time.Second
	// MQTT 3.1.1 §2.2.3: the remaining length is at most 268,435,455 bytes.
	maxPayloadLimit = 268435455
	// MQTT 3.1.1 §1.5.3: UTF-8 strings carry a 16-bit length.
	maxStringLen = 65535
)

// plan is a Subscription validated and prepared for decoding.
type plan struct {
	filter       []string // Topic split into levels
	filterText   string
	template     []string
	templateText string
	hasSite      bool // site known (template or fixed); false only for line protocol
	hasDevice    bool
	hasQuantity  bool // {quantity} in the template: check the captured value
	site, device string
	quantity     string // number format: fixed quantity
	unit         string // number format: the payload's unit; "" is the catalog unit
	format       string
	fields       []fieldPlan
	sites        []string // allow-lists; nil allows any name
	devices      []string
	known        *deviceSet // devices seen, bounded by max_devices
	time         timePlan
	qos          byte
}

type fieldPlan struct {
	path          []step
	pathText      string
	quantity      string
	scale, offset float64
	unit          string // "" is the catalog unit
	optional      bool
}

type timePlan struct {
	path     []step // nil: arrival time
	pathText string
	format   string
	loc      *time.Location
	prec     lineprotocol.Precision
}

// compile validates sub and prepares it. Error messages start with prefix (a field path
// such as "subscriptions[2].").
func compile(sub Subscription, prefix string) (*plan, []error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: prefix + field, Msg: fmt.Sprintf(format, args...)})
	}
	p := &plan{filterText: sub.Topic, format: sub.Format, qos: 1}

	if err := checkFilter(sub.Topic); err != nil {
		bad("topic", "%v", err)
	}
	p.filter = strings.Split(sub.Topic, "/")

	p.templateText = sub.Template
	if p.templateText == "" {
		p.templateText = sub.Topic
	}
	p.template = strings.Split(p.templateText, "/")
	var inTemplate [3]bool // site, device, quantity
	for i, t := range p.template {
		switch t {
		case "{site}", "{device}", "{quantity}":
			k := map[string]int{"{site}": 0, "{device}": 1, "{quantity}": 2}[t]
			if inTemplate[k] {
				bad("template", "%s appears twice", t)
			}
			inTemplate[k] = true
		case "#":
			if i != len(p.template)-1 {
				bad("template", `"#" must be the last level`)
			}
		case "+":
		default:
			if strings.ContainsAny(t, "+#{}") {
				bad("template", "level %q: placeholders are {site}, {device} and {quantity}; wildcards take a whole level", t)
			}
		}
	}
	if sub.Template != "" && checkFilter(sub.Topic) == nil {
		if err := templateFitsFilter(p.template, p.filter); err != nil {
			bad("template", "%v", err)
		}
	}

	switch sub.Format {
	case "", FormatJSON:
		p.format = FormatJSON
	case FormatNumber, FormatLineProtocol:
	default:
		bad("format", "%q: want %q, %q or %q", sub.Format, FormatJSON, FormatNumber, FormatLineProtocol)
	}
	lp := p.format == FormatLineProtocol

	ident := func(name, fixed string, fromTemplate bool) (string, bool) {
		switch {
		case fromTemplate && fixed != "":
			bad(name, "%q is set but the template has {%s}", fixed, name)
		case fromTemplate:
		case fixed == "" && lp:
			return "", false // must come from the site/device tags
		default:
			if err := reading.CheckName(fixed); err != nil {
				bad(name, "%v (or put {%s} in the template)", err, name)
			} else if name == "device" && reading.IsReservedDevice(fixed) {
				bad(name, "%q is reserved for the gateway's own health readings", fixed)
			}
		}
		return fixed, true
	}
	p.site, p.hasSite = ident("site", sub.Site, inTemplate[0])
	p.device, p.hasDevice = ident("device", sub.Device, inTemplate[1])
	p.hasQuantity = inTemplate[2]

	if sub.QoS > 1 {
		bad("qos", "%d: want 1 (or 0, meaning the default 1)", sub.QoS)
	}

	switch p.format {
	case FormatJSON:
		if sub.Quantity != "" {
			bad("quantity", "only for the number format; JSON fields name their own")
		}
		if len(sub.Fields) == 0 {
			bad("fields", "must not be empty for JSON")
		}
		seen := map[string]int{}
		for i, f := range sub.Fields {
			fp := fieldPlan{pathText: f.Path, quantity: f.Quantity, scale: f.Scale, offset: f.Offset, unit: f.Unit, optional: f.Optional}
			if f.Unit != "" && f.Quantity != "" {
				if err := reading.CheckUnit(f.Quantity, f.Unit); err != nil {
					bad(fmt.Sprintf("fields[%d].unit", i), "%v", err)
				}
			}
			name := fmt.Sprintf("fields[%d]", i)
			steps, err := parsePath(f.Path)
			if err != nil {
				bad(name+".path", "%v", err)
			}
			fp.path = steps
			q := f.Quantity
			switch {
			case q == "" && !inTemplate[2]:
				bad(name+".quantity", "must be set (or put {quantity} in the template)")
			case q == "":
				q = "{quantity}"
			default:
				if _, ok := reading.Lookup(q); !ok {
					bad(name+".quantity", "%q is not a catalog quantity", q)
				} else if reading.IsHealthQuantity(q) {
					bad(name+".quantity", "%q is one of the gateway's own health quantities, not a measurement", q)
				}
			}
			if j, dup := seen[q]; dup {
				bad(name+".quantity", "%s is also fields[%d]", q, j)
			} else {
				seen[q] = i
			}
			if fp.scale == 0 {
				fp.scale = 1
			}
			if math.IsNaN(fp.scale) || math.IsInf(fp.scale, 0) || math.IsNaN(fp.offset) || math.IsInf(fp.offset, 0) {
				bad(name, "scale and offset must be finite")
			}
			p.fields = append(p.fields, fp)
		}
		if _, used := seen["{quantity}"]; inTemplate[2] && !used {
			bad("template", "{quantity} is not used: every field names its quantity")
		}
	case FormatNumber:
		if len(sub.Fields) > 0 {
			bad("fields", "only for JSON")
		}
		switch {
		case sub.Quantity == "" && !inTemplate[2]:
			bad("quantity", "must be set (or put {quantity} in the template)")
		case sub.Quantity != "" && inTemplate[2]:
			bad("quantity", "%q is set but the template has {quantity}", sub.Quantity)
		case sub.Quantity != "":
			if _, ok := reading.Lookup(sub.Quantity); !ok {
				bad("quantity", "%q is not a catalog quantity", sub.Quantity)
			} else if reading.IsHealthQuantity(sub.Quantity) {
				bad("quantity", "%q is one of the gateway's own health quantities, not a measurement", sub.Quantity)
			}
		}
		p.quantity = sub.Quantity
		p.unit = sub.Unit
		if sub.Unit != "" && sub.Quantity != "" {
			if err := reading.CheckUnit(sub.Quantity, sub.Unit); err != nil {
				bad("unit", "%v", err)
			}
		}
	case FormatLineProtocol:
		if sub.Unit != "" {
			bad("unit", "line-protocol values are in the catalog units")
		}
		if len(sub.Fields) > 0 {
			bad("fields", "only for JSON; line-protocol field keys are the quantities")
		}
		if sub.Quantity != "" || inTemplate[2] {
			bad("quantity", "line-protocol field keys are the quantities")
		}
	}

	p.time = compileTime(sub.Time, p.format, bad)
	if i, msg := checkPatterns(sub.Sites); msg != "" {
		bad(fmt.Sprintf("sites[%d]", i), "%s", msg)
	}
	if i, msg := checkPatterns(sub.Devices); msg != "" {
		bad(fmt.Sprintf("devices[%d]", i), "%s", msg)
	}
	p.sites, p.devices = sub.Sites, sub.Devices
	maxDevices := sub.MaxDevices
	switch {
	case maxDevices == 0:
		maxDevices = DefaultMaxDevices
	case maxDevices < 0 || maxDevices > MaxMaxDevices:
		bad("max_devices", "%d: want 1 to %d", maxDevices, MaxMaxDevices)
	}
	p.known = newDeviceSet(maxDevices, DefaultDeviceExpiry)
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

func compileTime(ts TimeSpec, format string, bad func(field, format string, args ...any)) timePlan {
	tp := timePlan{pathText: ts.Path, format: ts.Format, loc: ts.Location}
	if tp.loc == nil {
		tp.loc = reading.ChinaStandardTime
	}
	switch format {
	case FormatNumber:
		if ts.Path != "" || ts.Format != "" {
			bad("time", "a number payload has no timestamp; readings take the arrival time")
		}
	case FormatLineProtocol:
		if ts.Path != "" {
			bad("time.path", "line protocol carries its own timestamp")
		}
		switch ts.Format {
		case "", TimeUnixNs:
			tp.prec = lineprotocol.Nanosecond
		case TimeUnixUs:
			tp.prec = lineprotocol.Microsecond
		case TimeUnixMs:
			tp.prec = lineprotocol.Millisecond
		case TimeUnix:
			tp.prec = lineprotocol.Second
		default:
			bad("time.format", "%q: line-protocol precision is %s, %s, %s or %s", ts.Format, TimeUnixNs, TimeUnixUs, TimeUnixMs, TimeUnix)
		}
	default:
		if ts.Path == "" {
			if ts.Format != "" {
				bad("time.format", "set without time.path (readings take the arrival time)")
			}
			break
		}
		steps, err := parsePath(ts.Path)
		if err != nil {
			bad("time.path", "%v", err)
		}
		tp.path = steps
		switch ts.Format {
		case TimeUnix, TimeUnixMs, TimeUnixUs, TimeUnixNs, TimeRFC3339:
		case "":
			bad("time.format", "must be set with time.path: %s, %s, %s, %s, %s or a Go layout", TimeUnix, TimeUnixMs, TimeUnixUs, TimeUnixNs, TimeRFC3339)
		default:
			if err := checkLayout(ts.Format); err != nil {
				bad("time.format", "%v", err)
			}
		}
	}
	return tp
}

// checkLayout accepts a Go time layout that records date and time to the second: a
// reference instant must survive formatting and parsing. The hour 13 catches "03"
// without "PM".
func checkLayout(layout string) error {
	ref := time.Date(2026, 11, 28, 13, 4, 5, 0, time.UTC)
	t, err := time.Parse(layout, ref.Format(layout))
	if err != nil || t.Year() != 2026 || t.Month() != 11 || t.Day() != 28 || t.Hour() != 13 || t.Minute() != 4 || t.Second() != 5 {
		return fmt.Errorf("%q is not a named format (%s, %s, %s, %s, %s) nor a Go layout with year, month, day, hour, minute and second (like \"2006-01-02 15:04:05\")",
			layout, TimeUnix, TimeUnixMs, TimeUnixUs, TimeUnixNs, TimeRFC3339)
	}
	return nil
}

// checkFilter validates an MQTT topic filter (MQTT 3.1.1 §4.7).
func checkFilter(f string) error {
	switch {
	case f == "":
		return errors.New("must not be empty")
	case len(f) > maxStringLen:
		return fmt.Errorf("longer than %d bytes", maxStringLen)
	case !utf8.ValidString(f) || strings.ContainsRune(f, 0):
		return errors.New("must be UTF-8 without NUL")
	}
	if strings.HasPrefix(f, "$share/") || strings.HasPrefix(f, "$queue/") {
		return fmt.Errorf("%q: shared subscriptions are not supported", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if l == "#" && i != len(levels)-1 {
			return fmt.Errorf("%q: \"#\" must be the last level", f)
		}
		if l != "#" && l != "+" && strings.ContainsAny(l, "#+") {
			return fmt.Errorf("%q: a wildcard must take a whole level", f)
		}
	}
	return nil
}

// templateFitsFilter rejects a template that no topic matching the filter can match.
func templateFitsFilter(tmpl, filter []string) error {
	for i := 0; i < len(tmpl) && i < len(filter); i++ {
		t, f := tmpl[i], filter[i]
		if t == "#" || f == "#" {
			return nil
		}
		if isLiteral(t) && isLiteral(f) && t != f {
			return fmt.Errorf("level %d is %q but the topic filter has %q", i+1, t, f)
		}
	}
	if len(tmpl) != len(filter) {
		return fmt.Errorf("has %d levels but the topic filter has %d", len(tmpl), len(filter))
	}
	return nil
}

func isLiteral(level string) bool {
	return level != "+" && level != "#" && !strings.HasPrefix(level, "{")
}

// filterMatches reports whether topic matches an MQTT filter (MQTT 3.1.1 §4.7),
// including the rule that wildcards at the first level do not match "$" topics.
func filterMatches(filter []string, topic string) bool {
	if strings.HasPrefix(topic, "$") && (filter[0] == "+" || filter[0] == "#") {
		return false
	}
	levels := strings.Split(topic, "/")
	for i, f := range filter {
		if f == "#" {
			return true
		}
		if i >= len(levels) || (f != "+" && f != levels[i]) {
			return false
		}
	}
	return len(levels) == len(filter)
}

// FieldError is one problem New finds in a Config: Field is the path of the field, in
// the config file's key names ("keep_alive", "subscriptions[2].fields[0].path"), so that
// the config package can place it in the file; Msg says what is wrong.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Check reports every problem of cfg, as New does (errors.Join of *FieldError), without
// building a Subscriber. envgate check runs it through the config package, so that it
// refuses exactly what envgate run would.
func Check(cfg Config) error {
	_, err := New(cfg, nil)
	return err
}

// New checks cfg and returns a Subscriber; it reports every problem at once, each a
// *FieldError with its field path. It does not connect; Run does. log may be nil; New adds driver=mqtt,
// the caller adds the source name (as cmd does for every source).
func New(cfg Config, log *slog.Logger) (*Subscriber, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if err := reading.CheckName(cfg.Name); err != nil {
		bad("name", "%v", err)
	}
	broker, err := brokerURL(cfg.Broker, cfg.TLS != nil)
	if err != nil {
		bad("broker", "%v", err)
	}
	switch {
	case cfg.ClientID == "":
		bad("client_id", "must be set: it names the persistent session that keeps messages while the gateway is away")
	case len(cfg.ClientID) > maxStringLen || !utf8.ValidString(cfg.ClientID) || strings.ContainsRune(cfg.ClientID, 0):
		bad("client_id", "must be UTF-8 without NUL, at most %d bytes", maxStringLen)
	}
	if cfg.Password != "" && cfg.Username == "" {
		bad("password", "set without username (MQTT 3.1.1 §3.1.2.9)")
	}
	if len(cfg.Username) > maxStringLen || len(cfg.Password) > maxStringLen {
		bad("username", "username and password are at most %d bytes", maxStringLen)
	}
	switch {
	case cfg.KeepAlive == 0:
		cfg.KeepAlive = defaultKeepAlive
	case cfg.KeepAlive < time.Second || cfg.KeepAlive > maxKeepAlive:
		bad("keep_alive", "%v: want 1s to %v", cfg.KeepAlive, maxKeepAlive)
	}
	switch {
	case cfg.MaxReconnect == 0:
		cfg.MaxReconnect = defaultMaxReconnect
	case cfg.MaxReconnect < time.Second:
		bad("max_reconnect", "%v: want at least 1s", cfg.MaxReconnect)
	}
	switch {
	case cfg.MaxPayload == 0:
		cfg.MaxPayload = defaultMaxPayload
	case cfg.MaxPayload < 0 || cfg.MaxPayload > maxPayloadLimit:
		bad("max_payload", "%d: want 1 to %d bytes", cfg.MaxPayload, maxPayloadLimit)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.DeviceExpiry == 0:
		cfg.DeviceExpiry = DefaultDeviceExpiry
	case cfg.DeviceExpiry < 0:
		bad("device_expiry", "%v: want > 0", cfg.DeviceExpiry)
	}
	if len(cfg.Subscriptions) == 0 {
		bad("subscriptions", "must not be empty")
	}
	s := &Subscriber{cfg: cfg, broker: broker, log: log.With("driver", "mqtt"), lim: defaultLimits, errorsByKind: map[string]uint64{}}
	// Every kind is present from the start, so metrics export zeros, not gaps.
	for _, k := range []string{KindJSON, KindNumber, KindLineProtocol, KindTopic, KindOversize, KindRange, KindQuantity, KindTime, KindReserved, KindUnlisted, KindDeviceLimit} {
		s.errorsByKind[k] = 0
	}
	filters := map[string]int{}
	for i, sub := range cfg.Subscriptions {
		prefix := fmt.Sprintf("subscriptions[%d].", i)
		p, perrs := compile(sub, prefix)
		errs = append(errs, perrs...)
		if j, dup := filters[sub.Topic]; dup {
			bad(prefix+"topic", "%q is also subscriptions[%d]", sub.Topic, j)
		} else {
			filters[sub.Topic] = i
		}
		if p != nil {
			p.known.expiry = cfg.DeviceExpiry
		}
		s.plans = append(s.plans, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !strictClientID(cfg.ClientID) {
		s.log.Warn("mqtt client id may be refused by strict brokers", "client_id", cfg.ClientID,
			"hint", "MQTT 3.1.1 only guarantees 1-23 characters of 0-9, a-z, A-Z")
	}
	return s, nil
}

// strictClientID reports whether every MQTT 3.1.1 broker must accept id (MQTT-3.1.3-5).
func strictClientID(id string) bool {
	if len(id) > 23 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// brokerURL checks a broker address and fills in the default port.
func brokerURL(s string, haveTLS bool) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("must be set, e.g. tcp://127.0.0.1:1883")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	var port string
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		if haveTLS {
			return nil, fmt.Errorf("%q: TLS is configured but the scheme is plain %s (use ssl:// or mqtts://)", s, u.Scheme)
		}
		port = "1883" // IANA "mqtt"
	case "ssl", "mqtts":
		port = "8883" // IANA "secure-mqtt"
	default:
		return nil, fmt.Errorf("%q: scheme must be tcp, ssl, mqtt or mqtts", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: put credentials in username and password, not the URL", u.Redacted())
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: want scheme://host[:port]", s)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), port)
	}
	return &url.URL{Scheme: strings.ToLower(u.Scheme), Host: host}, nil
}
