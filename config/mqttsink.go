package config

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/gateway/mqttpub"
)

// MQTTSink configures an MQTT uplink: a sink publishing every reading at QoS 1 to a
// central broker (gateway/mqttpub; docs/design.md, "MQTT uplink"). QoS is always 1.
type MQTTSink struct {
	Broker            string           `yaml:"broker"`               // required: tcp:// or mqtt://host[:port] (1883), ssl:// or mqtts://host[:port] (8883)
	Topic             string           `yaml:"topic"`                // template; default mqttpub.DefaultTopic
	Format            string           `yaml:"format"`               // json|line; default json
	ClientID          string           `yaml:"client_id"`            // default envgate-<gateway.id>-<sink name>
	Username          string           `yaml:"username"`             // optional
	Password          Secret           `yaml:"password"`             // optional; needs Username
	PasswordFile      string           `yaml:"password_file"`        // read the password from this file; not both password and password_file
	TLS               *MQTTTLS         `yaml:"tls"`                  // only with ssl:// or mqtts://; nil there means the system's roots
	BatchSize         int              `yaml:"batch_size"`           // messages per write (all acknowledged before the cursor moves); default 100; 1..10000
	FlushInterval     time.Duration    `yaml:"flush_interval"`       // default 1s; > 0
	Timeout           time.Duration    `yaml:"timeout"`              // connect, and wait for each PUBACK; default 10s; > 0
	KeepAlive         time.Duration    `yaml:"keep_alive"`           // default 30s; whole seconds, 1s..65535s
	RetryInitial      time.Duration    `yaml:"retry_initial"`        // default 1s; > 0
	RetryMax          time.Duration    `yaml:"retry_max"`            // default 2m; >= RetryInitial
	AuthRetry         time.Duration    `yaml:"auth_retry"`           // slow retry while the broker refuses the box; default 1m; > 0
	MaxBytesPerSecond ByteSize         `yaml:"max_bytes_per_second"` // rate cap for metered SIMs; default 0, no cap
	SinkPacing        `yaml:",inline"` // retry_jitter, max_rate
}

// MQTT uplink defaults, documented in docs/config.md.
const (
	DefaultUplinkFormat    = mqttpub.FormatJSON
	DefaultUplinkBatchSize = 100
	// maxUplinkBatchSize keeps a batch's messages within MQTT's 65535 packet
	// identifiers (§2.3.1), all in flight at once, with room to spare.
	maxUplinkBatchSize = 10000
)

// defaults fills the unset fields of the mqtt block of sink s; p is its path with a
// final ".".
func (m *MQTTSink) defaults(p string, s *Sink, g *Gateway, isSet func(string) bool) {
	setDefault(&m.Topic, mqttpub.DefaultTopic, false)
	setDefault(&m.Format, DefaultUplinkFormat, false)
	if m.ClientID == "" && !isSet(p+"client_id") && g.ID != "" && s.Name != "" {
		m.ClientID = mqttpub.DefaultClientID(g.ID, s.Name)
	}
	setDefault(&m.BatchSize, DefaultUplinkBatchSize, isSet(p+"batch_size"))
	setDefault(&m.FlushInterval, DefaultFlushInterval, isSet(p+"flush_interval"))
	setDefault(&m.Timeout, DefaultTimeout, isSet(p+"timeout"))
	setDefault(&m.KeepAlive, DefaultKeepAlive, isSet(p+"keep_alive"))
	setDefault(&m.RetryInitial, DefaultRetryInitial, isSet(p+"retry_initial"))
	setDefault(&m.RetryMax, DefaultRetryMax, isSet(p+"retry_max"))
	setDefault(&m.AuthRetry, DefaultAuthRetry, isSet(p+"auth_retry"))
	m.SinkPacing.defaults(p, isSet)
}

// validate checks an mqtt sink block at path p. No message quotes the broker URL or
// the password.
func (m *MQTTSink) validate(p string) problems {
	var ps problems
	add := func(key, format string, args ...any) { ps.add(p+"."+key, 0, format, args...) }
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			add(key, "must be > 0")
		}
	}
	brokerOK, tlsScheme := false, false
	if m.Broker == "" {
		add("broker", "required")
	} else if _, ok := mqttsub.BrokerAddress(m.Broker); !ok {
		add("broker", "must be tcp://, mqtt://, ssl:// or mqtts:// with a host and an optional port and no user or password, such as ssl://broker.example:8883")
	} else {
		brokerOK = true
		tlsScheme = strings.HasPrefix(strings.ToLower(m.Broker), "ssl://") || strings.HasPrefix(strings.ToLower(m.Broker), "mqtts://")
	}
	if _, err := mqttpub.ParseTopic(m.Topic); err != nil {
		add("topic", "%v", err)
	}
	if !slices.Contains(mqttpub.Formats, m.Format) {
		add("format", "must be one of %s", strings.Join(mqttpub.Formats, ", "))
	}
	switch {
	case m.ClientID == "":
		add("client_id", "must not be empty (leave it out for envgate-<gateway.id>-<sink name>)")
	case len(m.ClientID) > 65535 || !utf8.ValidString(m.ClientID) || strings.ContainsRune(m.ClientID, 0):
		add("client_id", "must be UTF-8 without U+0000, at most 65535 bytes (MQTT 3.1.1 §1.5.3)")
	}
	if m.Password != "" && m.Username == "" {
		key := "password"
		if m.PasswordFile != "" {
			key = "password_file"
		}
		add(key, "needs username: MQTT sends a password only with a user name (MQTT 3.1.1 §3.1.2.9)")
	}
	if t := m.TLS; t != nil {
		if brokerOK && !tlsScheme {
			add("tls", "needs an ssl:// or mqtts:// broker")
		}
		switch {
		case t.CertFile != "" && t.KeyFile == "":
			add("tls.key_file", "required with cert_file: mutual TLS needs the certificate and its key")
		case t.CertFile == "" && t.KeyFile != "":
			add("tls.cert_file", "required with key_file: mutual TLS needs the certificate and its key")
		}
	}
	if m.BatchSize < 1 || m.BatchSize > maxUplinkBatchSize {
		add("batch_size", "must be between 1 and %d", maxUplinkBatchSize)
	}
	positive("flush_interval", m.FlushInterval)
	positive("timeout", m.Timeout)
	if m.KeepAlive < time.Second || m.KeepAlive > 65535*time.Second || m.KeepAlive%time.Second != 0 {
		add("keep_alive", "must be whole seconds from 1s to %v (MQTT sends it as a 16-bit number of seconds)", 65535*time.Second)
	}
	positive("retry_initial", m.RetryInitial)
	switch {
	case m.RetryMax <= 0:
		add("retry_max", "must be > 0")
	case m.RetryInitial > 0 && m.RetryMax < m.RetryInitial:
		add("retry_max", "must be >= retry_initial (%v)", m.RetryInitial)
	}
	positive("auth_retry", m.AuthRetry)
	if m.MaxBytesPerSecond < 0 {
		add("max_bytes_per_second", "must be >= 0 (0: no cap)")
	}
	m.SinkPacing.validate(add)
	return ps
}

// validateUplinkClientIDs reports an mqtt sink whose client id is already used on the
// same broker by an mqtt source or another mqtt sink: a second connection with the
// same id disconnects the first (MQTT 3.1.1 §3.1.4), and the two would take turns
// kicking each other off.
func (c *Config) validateUplinkClientIDs() problems {
	var ps problems
	used := map[string]string{} // host:port and client id → path of the first user
	key := func(broker, id string) (string, bool) {
		addr, ok := mqttsub.BrokerAddress(broker)
		return strings.ToLower(addr) + " " + id, ok && id != ""
	}
	for i, m := range c.MQTT {
		if k, ok := key(m.Broker, m.ClientID); ok {
			if _, dup := used[k]; !dup {
				used[k] = indexPath("mqtt", i)
			}
		}
	}
	for i, s := range c.Sinks {
		if s.MQTT == nil {
			continue
		}
		p := indexPath("sinks", i) + ".mqtt"
		k, ok := key(s.MQTT.Broker, s.MQTT.ClientID)
		if !ok {
			continue
		}
		if first, dup := used[k]; dup {
			ps.add(p+".client_id", 0, "client_id %q is also used on this broker by %s; a second connection with the same id disconnects the first", s.MQTT.ClientID, first)
			continue
		}
		used[k] = p
	}
	return ps
}
