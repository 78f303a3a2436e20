package mqttsub

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

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

	KeepAlive    time.Duration // MQTT keep-alive; default 30s; whole seconds, 1s..65535s
	MaxReconnect time.Duration // cap of the reconnect back-off; default 30s
	// MaxPayload is in bytes; default 64 KiB. Larger messages are malformed ("oversize"):
	// only their first 256 bytes are kept, for the dead-letter file. paho reads a whole
	// packet into memory before the subscriber sees it, so the broker's own limit
	// (mosquitto: message_size_limit) is what bounds the memory a huge message takes.
	MaxPayload int

	// MaxInflight is the broker's in-flight window for this client: how many QoS 1
	// messages it sends without their PUBACK (mosquitto: max_inflight_messages); default
	// 20, mosquitto's. When that many wait for the pipeline's sync, the subscriber asks
	// for it at once instead of after the ack delay (window.go). 1..8192.
	MaxInflight int

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
	QoS int

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

// compile checks sub and prepares it; a device silent for expiry frees its place among
// MaxDevices. Each problem is a *FieldError whose Field starts with prefix (a field
// path such as "subscriptions[2].").
func compile(sub Subscription, prefix string, expiry time.Duration) (*plan, []error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: prefix + field, Msg: fmt.Sprintf(format, args...)})
	}
	p := &plan{filterText: sub.Topic, format: cmp.Or(sub.Format, FormatJSON), qos: 1}

	topicMsg := checkTopicFilter(sub.Topic)
	if topicMsg != "" {
		bad("topic", "%s", topicMsg)
	}
	p.filter = strings.Split(sub.Topic, "/")
	p.templateText = cmp.Or(sub.Template, sub.Topic)
	p.template = strings.Split(p.templateText, "/")
	if sub.Template != "" {
		for _, msg := range checkTemplate(sub.Template, sub.Topic, topicMsg == "") {
			bad("template", "%s", msg)
		}
	}
	formatOK := slices.Contains(formats, p.format)
	if !formatOK {
		bad("format", "must be one of %s", strings.Join(formats, ", "))
	}
	lp := p.format == FormatLineProtocol

	// ident checks the fixed site or device of the subscription against its template
	// (the topic, when there is none, cannot name levels).
	ident := func(key, value, elsewhere string) (string, bool) {
		level := "{" + key + "}"
		switch {
		case hasLevel(sub.Template, level) && value != "":
			bad(key, "set %s or %s in the template, not both", key, level)
		case hasLevel(sub.Template, level):
		case value == "" && lp:
			return "", false // each line's site and device tags name them
		case value == "":
			bad(key, "required: name a %s level in the template, or set %s", level, elsewhere)
		case reading.CheckName(value) != nil:
			bad(key, "%v", reading.CheckName(value))
		case key == "device" && reading.IsReservedDevice(value):
			bad(key, "%q is reserved for the gateway's own health readings", value)
		}
		return value, true
	}
	p.site, p.hasSite = ident("site", sub.Site, "site here or as gateway.site")
	p.device, p.hasDevice = ident("device", sub.Device, "device here")
	p.hasQuantity = hasLevel(sub.Template, "{quantity}")

	switch p.format {
	case FormatNumber:
		switch {
		case p.hasQuantity && sub.Quantity != "":
			bad("quantity", "set quantity or {quantity} in the template, not both")
		case p.hasQuantity:
		case sub.Quantity == "":
			bad("quantity", "required for format number: name a {quantity} level in the template, or set quantity here")
		case reading.CheckQuantity(sub.Quantity) != nil:
			bad("quantity", "%v", reading.CheckQuantity(sub.Quantity))
		case sub.Unit != "":
			if err := reading.CheckUnit(sub.Quantity, sub.Unit); err != nil {
				bad("unit", "%v", err)
			}
		}
		p.quantity, p.unit = sub.Quantity, sub.Unit
		if len(sub.Fields) > 0 {
			bad("fields", "is for format json; a number payload is one value")
		}
	case FormatJSON:
		if sub.Quantity != "" {
			bad("quantity", "is for format number; json fields name their own quantities")
		}
		if sub.Unit != "" {
			bad("unit", "is for format number; json fields give their own unit")
		}
		if len(sub.Fields) == 0 {
			bad("fields", "required for format json: list at least one field")
		}
		p.fields = compileFields(sub.Fields, p.hasQuantity, bad)
	case FormatLineProtocol:
		if sub.Quantity != "" {
			bad("quantity", "is for format number; line protocol names its own fields")
		}
		if sub.Unit != "" {
			bad("unit", "is for format number; line-protocol values are in the catalog units")
		}
		if p.hasQuantity {
			bad("template", "{quantity} is for formats number and json; line protocol names its own fields")
		}
		if len(sub.Fields) > 0 {
			bad("fields", "is for format json; line protocol names its own fields, which must be catalog quantities")
		}
	}
	if formatOK {
		p.time = compileTime(sub.Time, p.format, bad)
	}
	if sub.QoS != 0 && sub.QoS != 1 {
		bad("qos", "must be 1: QoS 1 keeps messages at the broker until the gateway has them on disk; QoS 0 could lose them")
	}
	if i, msg := checkPatterns(sub.Sites); msg != "" {
		bad(fmt.Sprintf("sites[%d]", i), "%s", msg)
	}
	if i, msg := checkPatterns(sub.Devices); msg != "" {
		bad(fmt.Sprintf("devices[%d]", i), "%s", msg)
	}
	p.sites, p.devices = sub.Sites, sub.Devices
	maxDevices := cmp.Or(sub.MaxDevices, DefaultMaxDevices)
	if maxDevices < 1 || maxDevices > MaxMaxDevices {
		bad("max_devices", "must be 1 to %d", MaxMaxDevices)
	}
	p.known = newDeviceSet(maxDevices, expiry)
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// compileFields checks the fields of a json subscription. withQuantity reports whether the template names a {quantity} level, which
// one field may take as its quantity by leaving Quantity empty.
func compileFields(fields []Field, withQuantity bool, bad func(field, format string, args ...any)) []fieldPlan {
	var plans []fieldPlan
	first := map[string]string{} // quantity, or "" for {quantity} → path of its field
	for i, f := range fields {
		name := fmt.Sprintf("fields[%d]", i)
		steps, err := parsePath(f.Path)
		if err != nil {
			bad(name+".path", "%v", err)
		}
		switch dup, seen := first[f.Quantity]; {
		case f.Quantity == "" && !withQuantity:
			bad(name+".quantity", "required (or name a {quantity} level in the template, which one field may take)")
		case f.Quantity == "" && seen:
			bad(name+".quantity", "required: only one field takes {quantity} from the topic (%s does)", dup)
		case f.Quantity != "" && reading.CheckQuantity(f.Quantity) != nil:
			bad(name+".quantity", "%v", reading.CheckQuantity(f.Quantity))
		case seen:
			bad(name+".quantity", "duplicate quantity %q (first at %s); a message gives each quantity once", f.Quantity, dup)
		default:
			first[f.Quantity] = name // within this subscription
			if f.Unit != "" && f.Quantity != "" {
				if err := reading.CheckUnit(f.Quantity, f.Unit); err != nil {
					bad(name+".unit", "%v", err)
				}
			}
		}
		fp := fieldPlan{path: steps, pathText: f.Path, quantity: f.Quantity, scale: cmp.Or(f.Scale, 1),
			offset: f.Offset, unit: f.Unit, optional: f.Optional}
		if math.IsNaN(fp.scale) || math.IsInf(fp.scale, 0) || math.IsNaN(fp.offset) || math.IsInf(fp.offset, 0) {
			bad(name, "scale and offset must be finite")
		}
		plans = append(plans, fp)
	}
	if _, used := first[""]; withQuantity && !used && len(fields) > 0 {
		bad("template", "{quantity} is used by no field: leave quantity out of the field it is for, or make that level +")
	}
	return plans
}

// compileTime checks where messages of the given format carry their time.
func compileTime(ts TimeSpec, format string, bad func(field, format string, args ...any)) timePlan {
	tp := timePlan{pathText: ts.Path, format: ts.Format, loc: cmp.Or(ts.Location, reading.ChinaStandardTime)}
	switch {
	case format == FormatNumber:
		if ts != (TimeSpec{}) {
			bad("time", "is for formats json and lineprotocol: a number payload has only its value, and its reading gets the arrival time")
		}
		return tp
	case format == FormatLineProtocol:
		if ts.Path != "" {
			bad("time.path", "is for format json; line protocol carries its timestamp at the end of each line")
		}
		prec, ok := map[string]lineprotocol.Precision{"": lineprotocol.Nanosecond, TimeUnixNs: lineprotocol.Nanosecond,
			TimeUnixUs: lineprotocol.Microsecond, TimeUnixMs: lineprotocol.Millisecond, TimeUnix: lineprotocol.Second}[ts.Format]
		if !ok {
			bad("time.format", "must be one of %s for format lineprotocol: the precision of the lines' timestamps (default unix_ns)", strings.Join(epochFormats, ", "))
		}
		tp.prec = prec
	case ts.Path == "":
		if ts.Format != "" {
			bad("time.format", "needs time.path, the JSON key holding the time (without it, readings get the arrival time)")
		}
	default:
		steps, err := parsePath(ts.Path)
		if err != nil {
			bad("time.path", "%v", err)
		}
		tp.path = steps
		if msg := checkTimeFormat(ts.Format); msg != "" {
			bad("time.format", "%s", msg)
		}
	}
	switch {
	case ts.Location == nil:
	case ts.Path == "":
		bad("time.location", "needs time.path: it is the zone of the times read from there")
	case ts.Location == time.Local:
		bad("time.location", "must name a zone such as Asia/Shanghai or UTC; Local depends on the box's settings")
	}
	return tp
}

// filterMatches reports whether topic matches an MQTT filter (MQTT 3.1.1 §4.7),
// including the rule that wildcards at the first level do not match "$" topics.
func filterMatches(filter []string, topic string) bool {
	if strings.HasPrefix(topic, "$") && (filter[0] == "+" || filter[0] == "#") {
		return false
	}
	rest, more := topic, true // the levels not yet matched; more: at least one is left
	for _, f := range filter {
		if f == "#" {
			return true
		}
		if !more {
			return false
		}
		var level string
		level, rest, more = strings.Cut(rest, "/")
		if f != "+" && f != level {
			return false
		}
	}
	return !more
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
	broker, msg := brokerURL(cfg.Broker)
	if msg != "" {
		bad("broker", "%s", msg)
	} else if cfg.TLS != nil && !slices.Contains(tlsSchemes, broker.Scheme) {
		bad("tls", "needs an ssl:// or mqtts:// broker; with %s:// nothing is encrypted", broker.Scheme)
	}
	switch {
	case cfg.ClientID == "":
		bad("client_id", "required: a name the broker keeps this box's session under, the same after every restart")
	case !mqttString(cfg.ClientID):
		bad("client_id", "must be UTF-8 without U+0000, at most %d bytes (MQTT 3.1.1 §1.5.3); at most 23 of 0-9, a-z, A-Z suits every broker", maxStringLen)
	}
	if !mqttString(cfg.Username) {
		bad("username", "must be UTF-8 without U+0000, at most %d bytes (MQTT 3.1.1 §1.5.3)", maxStringLen)
	}
	if len(cfg.Password) > maxStringLen {
		bad("password", "longer than %d bytes, the most MQTT can send (MQTT 3.1.1 §3.1.3.5)", maxStringLen)
	}
	if cfg.Password != "" && cfg.Username == "" {
		bad("password", "needs username: MQTT sends a password only with a user name (MQTT 3.1.1 §3.1.2.9)")
	}
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, defaultKeepAlive)
	if cfg.KeepAlive < time.Second || cfg.KeepAlive > maxKeepAlive || cfg.KeepAlive%time.Second != 0 {
		bad("keep_alive", "must be whole seconds from 1s to %v (MQTT sends it as a 16-bit number of seconds)", maxKeepAlive)
	}
	cfg.MaxReconnect = cmp.Or(cfg.MaxReconnect, defaultMaxReconnect)
	if cfg.MaxReconnect < time.Second {
		bad("max_reconnect", "must be at least 1s")
	}
	cfg.MaxInflight = cmp.Or(cfg.MaxInflight, DefaultMaxInflight)
	if cfg.MaxInflight < 1 || cfg.MaxInflight > maxHeld {
		bad("max_inflight", "must be between 1 and %d, the messages the subscriber holds", maxHeld)
	}
	cfg.MaxPayload = cmp.Or(cfg.MaxPayload, defaultMaxPayload)
	if cfg.MaxPayload < 1 || cfg.MaxPayload > maxPayloadLimit {
		bad("max_payload", "must be between 1 and %d bytes, the largest MQTT packet", maxPayloadLimit)
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
		bad("subscriptions", "required: list the topics to read")
	}
	s := &Subscriber{cfg: cfg, broker: broker, log: log.With("driver", "mqtt"), lim: defaultLimits, errorsByKind: map[string]uint64{}}
	var err error
	if s.dl, err = newDeadLetter(cfg.DeadLetter); err != nil {
		bad("dead_letter", "%s", err)
	}
	// Every kind is present from the start, so metrics export zeros, not gaps.
	for _, k := range []string{KindJSON, KindNumber, KindLineProtocol, KindTopic, KindOversize, KindRange, KindQuantity, KindTime, KindReserved, KindUnlisted, KindDeviceLimit} {
		s.errorsByKind[k] = 0
	}
	filters := map[string]int{}
	for i, sub := range cfg.Subscriptions {
		prefix := fmt.Sprintf("subscriptions[%d].", i)
		p, perrs := compile(sub, prefix, cfg.DeviceExpiry)
		errs = append(errs, perrs...)
		if j, dup := filters[sub.Topic]; dup && sub.Topic != "" {
			bad(prefix+"topic", "duplicate topic %q (first at subscriptions[%d]); a broker keeps one subscription per filter", sub.Topic, j)
		} else {
			filters[sub.Topic] = i
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
