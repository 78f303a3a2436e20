// Package config defines the gateway's configuration file: one YAML file per box,
// naming the box, tuning its durable buffer, and listing its sinks, devices, Modbus
// buses, MQTT brokers and UART particulate sensors. Modbus register maps of common
// devices are built in as profiles (config/profiles, documented in docs/devices.md).
//
// Load and Parse report every problem in a file at once, each with a field path and
// a line number, so that an installer fixes a file in one pass. The schema, defaults
// and syntax are documented in docs/config.md.
package config

import (
	"bytes"
	_ "embed"
	"path/filepath"
	"time"

	"github.com/envgate/envgate/gateway/deadletter"
)

// Config is the whole configuration of one gateway box.
type Config struct {
	Gateway      Gateway         `yaml:"gateway"`
	Buffer       Buffer          `yaml:"buffer"`
	Sinks        []Sink          `yaml:"sinks"`
	Devices      []Device        `yaml:"devices"`
	Buses        []Bus           `yaml:"buses"`         // Modbus buses and the devices on them
	MQTT         []MQTT          `yaml:"mqtt"`          // MQTT brokers and the topics read from them
	PM           []PMSensor      `yaml:"pm"`            // particulate sensors on UARTs
	HJ212        []HJ212Listener `yaml:"hj212_listen"`  // HJ 212-2017 analyzers (TCP or serial)
	Noise        Noise           `yaml:"noise"`         // noise monitors judged against GB 3096 limits
	Air          Air             `yaml:"air"`           // air monitors: validity-checked means and AQI (HJ 633)
	Water        Water           `yaml:"water"`         // water sections classified by GB 3838
	Screening    Screening       `yaml:"screening"`     // data-quality screening of every channel
	ProfileFiles []string        `yaml:"profile_files"` // users' profile files, relative to the config file's directory

	// profiles holds the profiles read from ProfileFiles by Parse, by name, so that
	// Defaults and Validate know them too. A nil entry is a profile whose file has
	// problems (reported against that file, not again by every device using it).
	profiles map[string]*Profile

	// webTLS is set by Parse when gateway.web_config_file configures TLS.
	webTLS bool
}

// Gateway names the box and sets its process-wide options.
type Gateway struct {
	ID              string        `yaml:"id"`               // required; reading.CheckName
	Site            string        `yaml:"site"`             // default site for devices; optional; CheckName if set
	StateDir        string        `yaml:"state_dir"`        // default "/var/lib/envgate"
	Listen          string        `yaml:"listen"`           // HTTP address for /metrics, /healthz; default "127.0.0.1:9273"
	WebConfigFile   string        `yaml:"web_config_file"`  // TLS and basic auth of the HTTP server (exporter-toolkit web config); optional; relative to the config file's directory
	LogLevel        string        `yaml:"log_level"`        // debug|info|warn|error; default info
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"` // default 15s; > 0
	HealthInterval  time.Duration `yaml:"health_interval"`  // how often the gateway writes its own health readings; default 60s; >= 1s
	SeriesExpiry    time.Duration `yaml:"series_expiry"`    // a latest-value series without readings this long leaves /metrics; default 24h; >= 1m
}

// Buffer tunes the durable store-and-forward queue on disk.
type Buffer struct {
	MaxBytes       ByteSize      `yaml:"max_bytes"`       // default 1 GiB; >= 1 MiB
	MaxAge         time.Duration `yaml:"max_age"`         // default 720h; > 0
	SegmentBytes   ByteSize      `yaml:"segment_bytes"`   // default 8 MiB; 64 KiB..256 MiB and <= MaxBytes/4
	Sync           string        `yaml:"sync"`            // "interval" (default) or "batch"
	SyncInterval   time.Duration `yaml:"sync_interval"`   // default 1s; > 0; only meaningful for sync: interval
	CursorInterval time.Duration `yaml:"cursor_interval"` // how often ack cursors are persisted; default 5s; > 0
	AckDelay       time.Duration `yaml:"ack_delay"`       // longest wait of an acknowledged source's batch (MQTT QoS 1) for its fsync; default 5s; 0..30s
	MemoryReadings int           `yaml:"memory_readings"` // readings held in RAM while the disk fails; default 100000; >= 0
}

// Sink is one destination for readings. Exactly one kind block is set.
type Sink struct {
	Name     string    `yaml:"name"`     // required, CheckName, unique among sinks
	InfluxDB *InfluxDB `yaml:"influxdb"` // InfluxDB line protocol (docs/config.md)
	MQTT     *MQTTSink `yaml:"mqtt"`     // MQTT uplink (mqttsink.go)
	// PrometheusRemoteWrite pushes samples to a remote-write receiver (config/remotewrite.go).
	PrometheusRemoteWrite *RemoteWrite `yaml:"prometheus_remote_write"`
	HJ212                 *HJ212Sink   `yaml:"hj212"` // HJ 212-2017 uplink to a platform (config/hj212.go)
}

// InfluxDB configures a sink writing line protocol to InfluxDB 1.8 (v2 write API),
// 2.x or 3.x.
type InfluxDB struct {
	URL                string        `yaml:"url"`                  // required, http or https URL with host
	Bucket             string        `yaml:"bucket"`               // required; InfluxDB 1.8: "db/rp" or "db"
	Org                string        `yaml:"org"`                  // optional (1.8 and 3.x ignore it)
	Token              Secret        `yaml:"token"`                // 2.x/3.x token, or "user:pass" for 1.8; optional
	TokenFile          string        `yaml:"token_file"`           // read the token from this file; not both token and token_file
	Precision          string        `yaml:"precision"`            // s|ms|us|ns; default ms
	BatchSize          int           `yaml:"batch_size"`           // default 1000; 1..50000
	FlushInterval      time.Duration `yaml:"flush_interval"`       // default 1s; > 0
	MaxInFlight        int           `yaml:"max_in_flight"`        // write requests in flight at once; default 2; 1..16
	Timeout            time.Duration `yaml:"timeout"`              // per HTTP request; default 10s; > 0
	Gzip               *bool         `yaml:"gzip"`                 // default true
	RetryInitial       time.Duration `yaml:"retry_initial"`        // default 1s; > 0
	RetryMax           time.Duration `yaml:"retry_max"`            // default 2m; >= RetryInitial
	AuthRetry          time.Duration `yaml:"auth_retry"`           // slow retry while 401/403/404; default 1m; > 0
	DeadLetter         string        `yaml:"dead_letter"`          // default <state_dir>/deadletter/<sink name>.lp
	CAFile             string        `yaml:"ca_file"`              // optional PEM bundle for https
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify"` // optional

	// The dead-letter file is rotated before it grows beyond DeadLetterMaxBytes
	// (default 16 MiB; 64 KiB..1 GiB), keeping DeadLetterKeep older files (default 3; 0..20).
	DeadLetterMaxBytes ByteSize `yaml:"dead_letter_max_bytes"`
	DeadLetterKeep     int      `yaml:"dead_letter_keep"`

	SinkPacing `yaml:",inline"` // retry_jitter, max_rate
}

// SinkPacing is how a sink spares a central server that a whole fleet returns to at
// once (docs/design.md, "Reconnect storms"). Every sink kind embeds it with
// `yaml:",inline"`, so its keys sit in the kind's block, and calls its defaults and
// validate from its own.
type SinkPacing struct {
	RetryJitter time.Duration `yaml:"retry_jitter"` // random delay before the first attempt after a back-off; default 5s; 0..1h
	MaxRate     float64       `yaml:"max_rate"`     // readings per second at most; default 0 (unlimited); 0 or 1..1e6
}

// Device is one sensor or sensor group polled by the gateway. Exactly one driver
// block is set.
type Device struct {
	Name     string        `yaml:"name"`     // required, CheckName, unique among devices
	Site     string        `yaml:"site"`     // default gateway.site; required after defaults
	Interval time.Duration `yaml:"interval"` // required, > 0
	Timeout  time.Duration `yaml:"timeout"`  // default = interval; > 0 and <= interval
	Sim      *Sim          `yaml:"sim"`      // the only driver today
}

// Sim configures the seeded, deterministic simulator driver.
type Sim struct {
	Kind string `yaml:"kind"` // noise|air|water|weather (required)
	Seed int64  `yaml:"seed"` // default 1
}

// Defaults, documented in docs/config.md. Keep the two in step.
const (
	DefaultStateDir        = "/var/lib/envgate"
	DefaultListen          = "127.0.0.1:9273"
	DefaultLogLevel        = "info"
	DefaultShutdownTimeout = 15 * time.Second
	DefaultHealthInterval  = 60 * time.Second
	DefaultSeriesExpiry    = 24 * time.Hour // metrics.DefaultSeriesExpiry, mqttsub.DefaultDeviceExpiry

	DefaultMaxBytes       = 1 * GiB
	DefaultMaxAge         = 720 * time.Hour
	DefaultSegmentBytes   = 8 * MiB
	DefaultSync           = SyncInterval
	DefaultSyncInterval   = 1 * time.Second
	DefaultCursorInterval = 5 * time.Second
	DefaultAckDelay       = 5 * time.Second // docs/design.md §5: the wear figures behind it
	MaxAckDelay           = 30 * time.Second
	DefaultMemoryReadings = 100000

	DefaultPrecision     = "ms"
	DefaultBatchSize     = 1000
	DefaultFlushInterval = 1 * time.Second
	DefaultMaxInFlight   = 2 // gateway.DefaultMaxInFlight
	DefaultTimeout       = 10 * time.Second
	DefaultRetryInitial  = 1 * time.Second
	DefaultRetryMax      = 2 * time.Minute
	DefaultAuthRetry     = 1 * time.Minute
	DefaultRetryJitter   = 5 * time.Second // SinkPacing; within issue 14's "resumes within seconds"

	DefaultDeadLetterMaxBytes = ByteSize(deadletter.DefaultMaxBytes)
	DefaultDeadLetterKeep     = deadletter.DefaultKeep

	DefaultSeed = 1

	DefaultBusTimeout = 1 * time.Second // Modbus over Serial Line V1.02: "typically 1 s to several seconds at 9600 bps" (docs/engineering-notes.md §1.3)
	DefaultMaxGap     = 4
	DefaultBaud       = 9600
	DefaultDataBits   = 8
	DefaultParity     = "none"
	DefaultStopBits   = 1
	DefaultFunction   = 3 // read holding registers, what most transmitters answer (docs/engineering-notes.md §4)
	DefaultOrder      = "ABCD"
	DefaultScale      = 1.0
)

// Buffer.Sync policies.
const (
	SyncInterval = "interval" // fsync every Buffer.SyncInterval
	SyncBatch    = "batch"    // fsync after every appended batch
)

//go:embed examples/demo.yaml
var demoYAML []byte

// Demo returns the configuration of the demo box, config/examples/demo.yaml: four
// simulated devices and no sinks. The caller may change the returned slice.
func Demo() []byte { return bytes.Clone(demoYAML) }

// Defaults fills every unset field with its default and resolves the profile of each
// Modbus device (see ModbusDevice.Points). It is for configs built in code; Load and
// Parse apply defaults themselves. It may be called more than once, and it derives
// some defaults from other fields (a device's site from gateway.site, its timeout from
// its interval, a sink's or mqtt source's dead_letter from gateway.state_dir, a point's
// interval from its device's, a pm sensor's mode from its model and stale from its
// interval, an air monitor's site and sample from its device's site and interval), so
// set those first.
func (c *Config) Defaults() {
	c.defaults(func(string) bool { return false })
	c.resolve()
}

// defaults fills zero fields with their defaults. isSet reports whether the file set
// a field explicitly, so that a written 0 stays 0 (memory_readings: 0 disables the
// RAM fallback; timeout: 0 is reported rather than silently replaced).
func (c *Config) defaults(isSet func(path string) bool) {
	g := &c.Gateway
	setDefault(&g.StateDir, DefaultStateDir, false)
	setDefault(&g.Listen, DefaultListen, false)
	setDefault(&g.LogLevel, DefaultLogLevel, false)
	setDefault(&g.ShutdownTimeout, DefaultShutdownTimeout, isSet("gateway.shutdown_timeout"))
	setDefault(&g.HealthInterval, DefaultHealthInterval, isSet("gateway.health_interval"))
	setDefault(&g.SeriesExpiry, DefaultSeriesExpiry, isSet("gateway.series_expiry"))

	b := &c.Buffer
	setDefault(&b.MaxBytes, DefaultMaxBytes, isSet("buffer.max_bytes"))
	setDefault(&b.MaxAge, DefaultMaxAge, isSet("buffer.max_age"))
	setDefault(&b.SegmentBytes, DefaultSegmentBytes, isSet("buffer.segment_bytes"))
	setDefault(&b.Sync, DefaultSync, false)
	setDefault(&b.SyncInterval, DefaultSyncInterval, isSet("buffer.sync_interval"))
	setDefault(&b.CursorInterval, DefaultCursorInterval, isSet("buffer.cursor_interval"))
	setDefault(&b.AckDelay, DefaultAckDelay, isSet("buffer.ack_delay"))
	setDefault(&b.MemoryReadings, DefaultMemoryReadings, isSet("buffer.memory_readings"))

	for i := range c.Sinks {
		s := &c.Sinks[i]
		if s.MQTT != nil {
			s.MQTT.defaults(indexPath("sinks", i)+".mqtt.", s, g, isSet)
		}
		if s.HJ212 != nil {
			s.HJ212.defaults(indexPath("sinks", i)+".hj212.", g, isSet)
		}
		if s.PrometheusRemoteWrite != nil {
			s.PrometheusRemoteWrite.defaults(indexPath("sinks", i)+".prometheus_remote_write.", s.Name, g.StateDir, isSet)
		}
		if s.InfluxDB == nil {
			continue
		}
		p := indexPath("sinks", i) + ".influxdb."
		x := s.InfluxDB
		setDefault(&x.Precision, DefaultPrecision, false)
		setDefault(&x.BatchSize, DefaultBatchSize, isSet(p+"batch_size"))
		setDefault(&x.FlushInterval, DefaultFlushInterval, isSet(p+"flush_interval"))
		setDefault(&x.MaxInFlight, DefaultMaxInFlight, isSet(p+"max_in_flight"))
		setDefault(&x.Timeout, DefaultTimeout, isSet(p+"timeout"))
		if x.Gzip == nil {
			x.Gzip = new(true)
		}
		setDefault(&x.RetryInitial, DefaultRetryInitial, isSet(p+"retry_initial"))
		setDefault(&x.RetryMax, DefaultRetryMax, isSet(p+"retry_max"))
		setDefault(&x.AuthRetry, DefaultAuthRetry, isSet(p+"auth_retry"))
		x.SinkPacing.defaults(p, isSet)
		if x.DeadLetter == "" && s.Name != "" {
			x.DeadLetter = filepath.Join(g.StateDir, "deadletter", s.Name+".lp")
		}
		setDefault(&x.DeadLetterMaxBytes, DefaultDeadLetterMaxBytes, isSet(p+"dead_letter_max_bytes"))
		setDefault(&x.DeadLetterKeep, DefaultDeadLetterKeep, isSet(p+"dead_letter_keep"))
	}

	for i := range c.Devices {
		d := &c.Devices[i]
		p := indexPath("devices", i) + "."
		setDefault(&d.Site, g.Site, false)
		setDefault(&d.Timeout, d.Interval, isSet(p+"timeout"))
		if d.Sim != nil {
			setDefault(&d.Sim.Seed, DefaultSeed, isSet(p+"sim.seed"))
		}
	}

	for i := range c.Buses {
		c.Buses[i].defaults(indexPath("buses", i)+".", g.Site, isSet)
	}
	for i := range c.MQTT {
		c.MQTT[i].defaults(indexPath("mqtt", i)+".", g, isSet)
	}
	for i := range c.PM {
		c.PM[i].defaults(indexPath("pm", i)+".", g.Site, isSet)
	}
	for i := range c.HJ212 {
		c.HJ212[i].defaults(indexPath("hj212_listen", i)+".", g.Site, isSet)
	}
	c.Noise.defaults(c)
	c.Air.defaults(c, isSet)
	c.Water.defaults(isSet)
	c.Screening.defaults()
}

// setDefault sets *p to def when *p is the zero value and the file did not set it.
func setDefault[T comparable](p *T, def T, set bool) {
	var zero T
	if *p == zero && !set {
		*p = def
	}
}
