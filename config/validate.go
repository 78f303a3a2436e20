package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/influx"
)

// Limits on buffer segments: a segment is the unit the buffer drops when it is full,
// so at least four must fit in max_bytes for dropping to free space gradually.
const (
	minSegmentBytes = 64 * KiB
	maxSegmentBytes = 256 * MiB
	minMaxBytes     = 1 * MiB
	maxBatchSize    = 50000
	maxInFlight     = 16
	minHealth       = time.Second
	minSeriesExpiry = time.Minute
	// maxMemoryReadings bounds buffer.memory_readings: a reading.Reading is 104 bytes
	// on 64-bit ARM plus its strings (mostly shared names), so a million take about
	// 100-150 MiB, the most a 512 MiB box can give the RAM fallback.
	maxMemoryReadings = 1000000
	// waterStaleness is the threshold of WaterParamSensorStale (alerts/water.rules.yml,
	// 21600 s); noiseStaleness that of NoiseSensorStale (alerts/noise.rules.yml, 120 s).
	// A series must not expire before its staleness alert can fire.
	waterStaleness = 6 * time.Hour
	noiseStaleness = 2 * time.Minute
)

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	precisions = []string{"s", "ms", "us", "ns"}
	simKinds   = []string{"noise", "air", "water", "weather"}
)

// Validate reports every problem with a config that has had its defaults applied
// (see Defaults), joined with errors.Join; each is a *Problem with a field path and no
// line. It does not read token_file, password_file or profile_files; Load and Parse
// do, and a config they return remembers the profiles read.
func (c *Config) Validate() error {
	return c.validate(func(string) bool { return false }).err()
}

// validate checks c. inFile reports whether the file wrote a key, to tell "required"
// from "must be > 0" and to stay quiet about a block that failed to decode.
func (c *Config) validate(inFile func(path string) bool) problems {
	var ps problems
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	positive := func(path string, d time.Duration) {
		if d <= 0 {
			add(path, "must be > 0")
		}
	}

	g := c.Gateway
	ps.name("gateway.id", g.ID)
	if g.Site != "" {
		ps.name("gateway.site", g.Site)
	}
	if g.StateDir == "" {
		add("gateway.state_dir", "required")
	}
	if !validListen(g.Listen) {
		add("gateway.listen", `must be host:port with a numeric port, such as "127.0.0.1:9273" or ":9273"`)
	}
	if !slices.Contains(logLevels, g.LogLevel) {
		add("gateway.log_level", "must be one of %s", strings.Join(logLevels, ", "))
	}
	positive("gateway.shutdown_timeout", g.ShutdownTimeout)
	if g.HealthInterval < minHealth {
		add("gateway.health_interval", "must be at least %v", minHealth)
	}
	switch {
	case g.SeriesExpiry < minSeriesExpiry:
		add("gateway.series_expiry", "must be at least %v", minSeriesExpiry)
	case len(c.Water.Sections) > 0 && g.SeriesExpiry < waterStaleness:
		add("gateway.series_expiry", "must be at least 6h with water sections: WaterParamSensorStale (alerts/water.rules.yml) fires after 6h without a parameter, and needs the series")
	case len(c.Noise.Sites) > 0 && g.SeriesExpiry < noiseStaleness:
		add("gateway.series_expiry", "must be at least 2m with noise sites: NoiseSensorStale (alerts/noise.rules.yml) fires after 2m without a sample, and needs the series")
	}

	b := c.Buffer
	if b.MaxBytes < minMaxBytes {
		add("buffer.max_bytes", "must be at least %v", minMaxBytes)
	}
	positive("buffer.max_age", b.MaxAge)
	switch {
	case b.SegmentBytes < minSegmentBytes || b.SegmentBytes > maxSegmentBytes:
		add("buffer.segment_bytes", "must be between %v and %v", minSegmentBytes, maxSegmentBytes)
	case b.MaxBytes >= minMaxBytes && b.SegmentBytes > b.MaxBytes/4:
		add("buffer.segment_bytes", "must be at most max_bytes/4 (%v), so that dropping the oldest segment frees space gradually", b.MaxBytes/4)
	}
	if b.Sync != SyncInterval && b.Sync != SyncBatch {
		add("buffer.sync", "must be %q or %q", SyncInterval, SyncBatch)
	}
	positive("buffer.sync_interval", b.SyncInterval)
	positive("buffer.cursor_interval", b.CursorInterval)
	if b.AckDelay < 0 || b.AckDelay > MaxAckDelay {
		add("buffer.ack_delay", "must be between 0 and %v", MaxAckDelay)
	}
	if b.MemoryReadings < 0 || b.MemoryReadings > maxMemoryReadings {
		add("buffer.memory_readings", "must be between 0 and %d (about 100-150 MiB of RAM at most)", maxMemoryReadings)
	}

	sinks := map[string]int{}
	for i, s := range c.Sinks {
		p := indexPath("sinks", i)
		ps.name(p+".name", s.Name)
		ps.fileName(p+".name", s.Name)
		if first, dup := sinks[s.Name]; dup && s.Name != "" {
			add(p+".name", "duplicate sink name %q (first at sinks[%d])", s.Name, first)
		} else {
			sinks[s.Name] = i
		}
		var kinds []string
		for _, k := range []struct {
			name string
			set  bool
		}{{"influxdb", s.InfluxDB != nil}, {"mqtt", s.MQTT != nil}, {"prometheus_remote_write", s.PrometheusRemoteWrite != nil}, {"hj212", s.HJ212 != nil}} {
			if k.set || inFile(p+"."+k.name) {
				kinds = append(kinds, k.name)
			}
		}
		switch {
		case len(kinds) == 0:
			add(p, "needs a sink kind block: influxdb, mqtt, prometheus_remote_write or hj212")
		case len(kinds) > 1:
			add(p, "has %d sink kind blocks, %s: one sink has one kind", len(kinds), andList(kinds))
		}
		if s.MQTT != nil {
			ps = append(ps, s.MQTT.validate(p+".mqtt")...)
		}
		if s.PrometheusRemoteWrite != nil {
			ps = append(ps, s.PrometheusRemoteWrite.validate(p+".prometheus_remote_write")...)
		}
		if s.HJ212 != nil {
			ps = append(ps, s.HJ212.validate(p+".hj212")...)
		}
		if s.InfluxDB == nil {
			continue
		}
		ps = append(ps, s.InfluxDB.validate(p+".influxdb", inFile)...)
	}

	devices := map[string]string{} // name → path of the first device, for buses, mqtt and pm too
	for i, d := range c.Devices {
		p := indexPath("devices", i)
		ps.deviceName(p, d.Name, devices)
		ps.site(p+".site", d.Site, siteFromGateway)
		switch {
		case d.Interval == 0 && !inFile(p+".interval"):
			add(p+".interval", "required")
		case d.Interval <= 0:
			add(p+".interval", "must be > 0")
		}
		switch {
		case d.Timeout < 0, d.Timeout == 0 && d.Interval > 0:
			add(p+".timeout", "must be > 0")
		case d.Interval > 0 && d.Timeout > d.Interval:
			add(p+".timeout", "must be <= interval (%v)", d.Interval)
		}
		if d.Sim == nil {
			if !inFile(p + ".sim") {
				add(p, "needs a driver block: sim")
			}
			continue
		}
		switch {
		case d.Sim.Kind == "":
			add(p+".sim.kind", "required")
		case !slices.Contains(simKinds, d.Sim.Kind):
			add(p+".sim.kind", "must be one of %s", strings.Join(simKinds, ", "))
		}
	}
	ps = append(ps, c.validateBuses(devices, inFile)...)
	ps = append(ps, c.validateMQTT(devices)...)
	ps = append(ps, c.validateUplinkClientIDs()...)
	ps = append(ps, c.validatePM(devices)...)
	ps = append(ps, c.validateHJ212(devices)...)
	ps = append(ps, c.validateNoise()...)
	ps = append(ps, c.validateAir(inFile)...)
	ps = append(ps, c.validateWater()...)
	c.Screening.validate(&ps)
	ps = append(ps, c.validateDeadLetters(inFile)...)

	if n := len(c.ProfileFiles); n > MaxProfileFiles {
		add("profile_files", "at most %d files (this list has %d); none is read", MaxProfileFiles, n)
	} else {
		for i, f := range c.ProfileFiles {
			if f == "" {
				add(indexPath("profile_files", i), "must be a file path")
			}
		}
	}
	return ps
}

// validate checks an influxdb block at path p. No message quotes the URL, which may
// carry a password.
func (x *InfluxDB) validate(p string, inFile func(string) bool) problems {
	var ps problems
	add := func(key, format string, args ...any) { ps.add(p+"."+key, 0, format, args...) }
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			add(key, "must be > 0")
		}
	}
	if x.URL == "" {
		add("url", "required")
	} else if msg := influx.CheckURL(x.URL); msg != "" {
		add("url", "%s", msg) // the sink's own rule, so that check refuses what start would
	}
	if x.Bucket == "" {
		add("bucket", "required")
	}
	if !slices.Contains(precisions, x.Precision) {
		add("precision", "must be one of %s", strings.Join(precisions, ", "))
	}
	if x.BatchSize < 1 || x.BatchSize > maxBatchSize {
		add("batch_size", "must be between 1 and %d", maxBatchSize)
	}
	if x.MaxInFlight < 1 || x.MaxInFlight > maxInFlight {
		add("max_in_flight", "must be between 1 and %d", maxInFlight)
	}
	positive("flush_interval", x.FlushInterval)
	positive("timeout", x.Timeout)
	positive("retry_initial", x.RetryInitial)
	switch {
	case x.RetryMax <= 0:
		add("retry_max", "must be > 0")
	case x.RetryInitial > 0 && x.RetryMax < x.RetryInitial:
		add("retry_max", "must be >= retry_initial (%v)", x.RetryInitial)
	}
	positive("auth_retry", x.AuthRetry)
	if x.DeadLetterMaxBytes < 64*KiB || x.DeadLetterMaxBytes > GiB {
		add("dead_letter_max_bytes", "must be between 64KiB and 1GiB")
	}
	if x.DeadLetterKeep < 0 || x.DeadLetterKeep > maxDeadLetterKeep {
		add("dead_letter_keep", "must be between 0 and %d", maxDeadLetterKeep)
	}
	x.SinkPacing.validate(add)
	return ps
}

// defaults fills the pacing keys of the sink block at path p (ending in "."); an
// explicit retry_jitter: 0 stays 0.
func (x *SinkPacing) defaults(p string, isSet func(string) bool) {
	setDefault(&x.RetryJitter, DefaultRetryJitter, isSet(p+"retry_jitter"))
}

// Bounds of SinkPacing.
const (
	maxRetryJitter = time.Hour
	maxSinkRate    = 1e6
)

// validate checks the pacing keys; add reports a problem at a key of the sink block.
func (x *SinkPacing) validate(add func(key, format string, args ...any)) {
	if x.RetryJitter < 0 || x.RetryJitter > maxRetryJitter {
		add("retry_jitter", "must be between 0s and 1h") // maxRetryJitter
	}
	// Below 1 reading/s a write of one reading would wait longer than a second.
	if x.MaxRate != 0 && (x.MaxRate < 1 || x.MaxRate > maxSinkRate) {
		add("max_rate", "must be 0 (unlimited) or between 1 and %g readings per second", float64(maxSinkRate))
	}
}

// maxDeadLetterKeep bounds the rotated dead-letter files a sink keeps.
const maxDeadLetterKeep = 20

// validListen reports whether s is host:port with a port number (0 picks a free port).
func validListen(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && fmt.Sprint(n) == port
}

// fileName checks a name that is also the name of a file: a sink's names its cursor,
// <state_dir>/buffer/cursors/<name>, and its dead-letter file. "." and ".." made the
// cursor path a directory, so the cursor was never saved and everything was re-sent
// on restart (issue 10); the buffer removes cursors/*.tmp on start as the leftovers
// of a crash. CheckName has already refused "/" and NUL.
func (ps *problems) fileName(path, name string) {
	switch {
	case name == "." || name == "..":
		ps.add(path, 0, "must not be %q: it names files in the state directory", name)
	case strings.HasPrefix(name, "."):
		ps.add(path, 0, "must not start with \".\": it names files in the state directory")
	case strings.HasSuffix(name, ".tmp"):
		ps.add(path, 0, "must not end in \".tmp\": the buffer removes such files on start as leftovers of a crash")
	}
}
