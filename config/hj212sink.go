package config

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/hj212/uplink"
	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/water"
)

// HJ212Sink configures an HJ 212-2017 uplink: one platform (one TCP connection, one
// cursor) and the stations the box reports to it (gateway/hj212/uplink; docs/hj212.md,
// "Uplink"). A box reporting to a province and a city platform has two such sinks.
type HJ212Sink struct {
	Address       string               `yaml:"address"`        // required: host:port of the platform
	Stations      []HJ212UplinkStation `yaml:"stations"`       // required: at least one; MN unique within the sink
	Timezone      string               `yaml:"timezone"`       // QN, DataTime and SystemTime are local time here; default Asia/Shanghai
	Answers       bool                 `yaml:"answers"`        // ask for the platform's answer (Flag bit A, CN 9014); default true
	AnswerTimeout time.Duration        `yaml:"answer_timeout"` // wait for an answer (and a connect); default 10s; 1s..10m
	Retries       int                  `yaml:"retries"`        // re-sends of an unanswered packet, same QN; default 3; 0..10
	Heartbeat     time.Duration        `yaml:"heartbeat"`      // upload the site time (CN 1011) after this long without a packet; default 0 (off); 0 or 1s..1h
	RtdInterval   time.Duration        `yaml:"rtd_interval"`   // real-time data: one packet per station per interval at most; default 60s; whole seconds, 30s..3600s
	SuspectFlag   string               `yaml:"suspect_flag"`   // data flag of a suspect reading; default D
	BatchSize     int                  `yaml:"batch_size"`     // readings per write; default 1000; 1..50000
	FlushInterval time.Duration        `yaml:"flush_interval"` // default 1s; > 0
	RetryInitial  time.Duration        `yaml:"retry_initial"`  // default 1s; > 0
	RetryMax      time.Duration        `yaml:"retry_max"`      // default 2m; >= RetryInitial
	SinkPacing    `yaml:",inline"`     // retry_jitter, max_rate
}

// HJ212UplinkStation is one monitoring station (one MN) of an HJ 212 sink.
type HJ212UplinkStation struct {
	ST       string              `yaml:"st"`       // required: 21 surface water, 22 air, 23 acoustic environment
	MN       string              `yaml:"mn"`       // required: the station's device number
	PW       Secret              `yaml:"pw"`       // required: its access password
	Site     string              `yaml:"site"`     // readings of this site; default gateway.site; not with devices
	Devices  []string            `yaml:"devices"`  // readings of these devices instead of a site
	Realtime bool                `yaml:"realtime"` // send real-time data (CN 2011); default false
	Records  []string            `yaml:"records"`  // minute, hourly, daily; default none
	Factors  []HJ212UplinkFactor `yaml:"factors"`  // overrides by quantity ("pm25_1h") or base ("pm25"): code, decimals, scale
}

// HJ212UplinkFactor overrides how a quantity is sent.
type HJ212UplinkFactor struct {
	Quantity string  `yaml:"quantity"` // required: a quantity ("pm25_1h") or a base quantity ("pm25", all its series)
	Code     string  `yaml:"code"`     // factor code; default hj212.Factors
	Decimals *int    `yaml:"decimals"` // digits after the point; default the code's data type; 0..6
	Scale    float64 `yaml:"scale"`    // value sent = value × scale (unit conversion); default 1; > 0
}

// maxHJ212Retries bounds retries; the defaults are uplink's (DefaultAnswerTimeout,
// DefaultRetries, DefaultRtdInterval, DefaultSuspectFlag), documented in docs/config.md.
const maxHJ212Retries = 10

// defaults fills the unset keys of the hj212 block at p (ending in ".").
func (h *HJ212Sink) defaults(p string, g *Gateway, isSet func(string) bool) {
	setDefault(&h.Timezone, DefaultHJ212Timezone, false)
	if !isSet(p + "answers") {
		h.Answers = true
	}
	setDefault(&h.AnswerTimeout, uplink.DefaultAnswerTimeout, isSet(p+"answer_timeout"))
	setDefault(&h.Retries, uplink.DefaultRetries, isSet(p+"retries"))
	setDefault(&h.RtdInterval, uplink.DefaultRtdInterval, isSet(p+"rtd_interval"))
	setDefault(&h.SuspectFlag, uplink.DefaultSuspectFlag, false)
	setDefault(&h.BatchSize, DefaultBatchSize, isSet(p+"batch_size"))
	setDefault(&h.FlushInterval, DefaultFlushInterval, isSet(p+"flush_interval"))
	setDefault(&h.RetryInitial, DefaultRetryInitial, isSet(p+"retry_initial"))
	setDefault(&h.RetryMax, DefaultRetryMax, isSet(p+"retry_max"))
	for i := range h.Stations {
		st := &h.Stations[i]
		if st.Site == "" && len(st.Devices) == 0 && !isSet(fmt.Sprintf("%sstations[%d].site", p, i)) {
			st.Site = g.Site
		}
	}
	h.SinkPacing.defaults(p, isSet)
}

// checkUplinkQuantity reports why q cannot be the quantity of an uplink factor
// override: it is neither a catalog quantity (reading.CheckQuantity, as the listener
// checks its factors) nor one derived by gateway/noise, air or water (pm25_1h, ld),
// nor one of hj212.Factors.
func checkUplinkQuantity(q string) error {
	if _, ok := hj212.Factors[q]; ok {
		return nil
	}
	for _, qs := range [][]reading.Quantity{noise.Quantities(), air.Quantities(), water.Quantities()} {
		for _, d := range qs {
			if d.Name == q {
				return nil
			}
		}
	}
	return reading.CheckQuantity(q)
}

// hj212Field reports whether v can go into a packet's header field: no separator.
func hj212Field(v string) bool { return !strings.ContainsAny(v, ";=&,\r\n") }

// validate checks an hj212 block at path p. No message quotes a password.
func (h *HJ212Sink) validate(p string) problems {
	var ps problems
	add := func(key, format string, args ...any) { ps.add(p+"."+key, 0, format, args...) }
	if h.Address == "" {
		add("address", "required")
	} else if host, port, err := net.SplitHostPort(h.Address); err != nil || host == "" || port == "" {
		add("address", "must be host:port, such as platform.example:8600")
	}
	if _, err := LoadLocation(h.Timezone); err != nil {
		add("timezone", "%v (an IANA name such as Asia/Shanghai)", err)
	}
	if h.AnswerTimeout < time.Second || h.AnswerTimeout > 10*time.Minute {
		add("answer_timeout", "must be between 1s and 10m")
	}
	if h.Retries < 0 || h.Retries > maxHJ212Retries {
		add("retries", "must be between 0 and %d", maxHJ212Retries)
	}
	if h.Heartbeat != 0 && (h.Heartbeat < time.Second || h.Heartbeat > time.Hour) {
		add("heartbeat", "must be 0 (off) or between 1s and 1h")
	}
	if h.RtdInterval < uplink.MinRtdInterval || h.RtdInterval > uplink.MaxRtdInterval || h.RtdInterval%time.Second != 0 {
		add("rtd_interval", "must be whole seconds from 30s to 1h (HJ 212-2017's RtdInterval, 30-3600 s)")
	}
	if !slices.Contains(hj212.DataFlags, h.SuspectFlag) {
		add("suspect_flag", "must be one of %s (HJ 212-2017 data flags)", strings.Join(hj212.DataFlags, ", "))
	}
	if h.BatchSize < 1 || h.BatchSize > maxBatchSize {
		add("batch_size", "must be between 1 and %d", maxBatchSize)
	}
	if h.FlushInterval <= 0 {
		add("flush_interval", "must be > 0")
	}
	if h.RetryInitial <= 0 {
		add("retry_initial", "must be > 0")
	}
	switch {
	case h.RetryMax <= 0:
		add("retry_max", "must be > 0")
	case h.RetryInitial > 0 && h.RetryMax < h.RetryInitial:
		add("retry_max", "must be >= retry_initial (%v)", h.RetryInitial)
	}
	h.SinkPacing.validate(add)
	if len(h.Stations) == 0 {
		add("stations", "at least one station is required")
	}
	mns := map[string]int{}
	for i, st := range h.Stations {
		sp := fmt.Sprintf("stations[%d].", i)
		switch st.ST {
		case hj212.STSurfaceWater, hj212.STAir, hj212.STAcoustic:
		case "":
			add(sp+"st", "required: 21 (surface water), 22 (air) or 23 (acoustic environment)")
		default:
			add(sp+"st", "must be 21 (surface water), 22 (air) or 23 (acoustic environment)")
		}
		switch {
		case st.MN == "":
			add(sp+"mn", "required")
		case !hj212Field(st.MN) || len(st.MN) > 64:
			add(sp+"mn", "must be at most 64 characters without ; = & , or line breaks")
		default:
			if first, dup := mns[st.MN]; dup {
				add(sp+"mn", "duplicate mn %q (first at stations[%d]): the platform tells stations apart by mn", st.MN, first)
			} else {
				mns[st.MN] = i
			}
		}
		switch pw := st.PW.Reveal(); {
		case pw == "":
			add(sp+"pw", "required")
		case !hj212Field(pw) || len(pw) > 64:
			add(sp+"pw", "must be at most 64 characters without ; = & , or line breaks")
		}
		if st.Site != "" && len(st.Devices) > 0 {
			add(sp+"devices", "not with site: a station takes the readings of a site or of a list of devices")
		}
		if st.Site == "" && len(st.Devices) == 0 {
			add(sp+"site", "required (or devices, or gateway.site)")
		}
		if !st.Realtime && len(st.Records) == 0 {
			add(sp+"records", "a station sends nothing without realtime: true or records (minute, hourly, daily)")
		}
		seen := map[string]bool{}
		for j, r := range st.Records {
			if !slices.Contains(uplink.Records, r) {
				add(fmt.Sprintf("%srecords[%d]", sp, j), "must be one of %s", strings.Join(uplink.Records, ", "))
			} else if seen[r] {
				add(fmt.Sprintf("%srecords[%d]", sp, j), "duplicate %q", r)
			}
			seen[r] = true
		}
		quantities := map[string]int{}
		for j, f := range st.Factors {
			fp := fmt.Sprintf("%sfactors[%d].", sp, j)
			if f.Quantity == "" {
				add(fp+"quantity", "required")
			} else if first, dup := quantities[f.Quantity]; dup {
				add(fp+"quantity", "duplicate %q (first at factors[%d])", f.Quantity, first)
			} else {
				quantities[f.Quantity] = j
				if err := checkUplinkQuantity(f.Quantity); err != nil {
					add(fp+"quantity", "%v", err)
				}
			}
			if f.Code != "" && (!hj212Field(f.Code) || strings.Contains(f.Code, "-") || len(f.Code) > 16) {
				add(fp+"code", "must be at most 16 characters without - ; = & , or line breaks")
			}
			if f.Decimals != nil && (*f.Decimals < 0 || *f.Decimals > 6) {
				add(fp+"decimals", "must be between 0 and 6")
			}
			if f.Scale < 0 {
				add(fp+"scale", "must be > 0 (leave it out for 1)")
			}
		}
	}
	return ps
}
