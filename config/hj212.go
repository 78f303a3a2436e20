package config

import (
	"time"

	hj212src "github.com/envgate/envgate/drivers/hj212"
	"github.com/envgate/envgate/gateway/reading"
)

// HJ212Listener is one HJ 212-2017 analyzer source: a TCP listener or a serial port
// that analyzers and data loggers send packets to (docs/hj212.md, "Analyzer source").
// cmd converts it into drivers/hj212's Config.
type HJ212Listener struct {
	Name        string         `yaml:"name"`         // required, CheckName, unique among devices and sources
	Listen      string         `yaml:"listen"`       // TCP address, e.g. "0.0.0.0:9212"; or serial
	Serial      *HJ212Serial   `yaml:"serial"`       // a serial port instead of listen
	Timezone    string         `yaml:"timezone"`     // IANA zone of DataTime; default Asia/Shanghai
	PW          Secret         `yaml:"pw"`           // optional: packets with another PW are refused (QnRtn 3)
	MaxConns    int            `yaml:"max_conns"`    // TCP connections at once; default 16; 1..1024
	IdleTimeout time.Duration  `yaml:"idle_timeout"` // close a silent connection; default 65m; >= 1m
	Stations    []HJ212Station `yaml:"stations"`     // required: the analyzers, by MN
}

// HJ212Serial is the serial port of an HJ 212 listener (8N1).
type HJ212Serial struct {
	Port string `yaml:"port"` // required; unique among serial users
	Baud int    `yaml:"baud"` // default 9600
}

// HJ212Station is one analyzer or data logger, known by its MN.
type HJ212Station struct {
	MN      string        `yaml:"mn"`      // required, unique within the listener
	Site    string        `yaml:"site"`    // default gateway.site
	Device  string        `yaml:"device"`  // required: the readings' device, unique among devices
	Factors []HJ212Factor `yaml:"factors"` // code → quantity; overrides the defaults (docs/hj212.md)
}

// HJ212Factor maps a factor code to a catalog quantity.
type HJ212Factor struct {
	Code     string  `yaml:"code"`     // required: the factor code as sent (a21026, LA, O3), unique within the station
	Quantity string  `yaml:"quantity"` // required: a catalog quantity
	Scale    float64 `yaml:"scale"`    // value × scale is in the quantity's unit; unset or 0: 1
}

// DefaultHJ212Timezone is the zone of both HJ 212 blocks (hj212_listen and an hj212
// sink): QN, DataTime and SystemTime are Beijing time (HJ 212-2017, docs/standards.md
// §4.5); LoadLocation needs no tzdata for it.
const DefaultHJ212Timezone = "Asia/Shanghai"

// defaults fills the unset keys of hj212_listen entry p (ending in "."); the
// defaults are hj212src's (DefaultMaxConns, DefaultIdleTimeout, DefaultBaud),
// documented in docs/config.md.
func (l *HJ212Listener) defaults(p, site string, isSet func(string) bool) {
	setDefault(&l.Timezone, DefaultHJ212Timezone, false)
	setDefault(&l.MaxConns, hj212src.DefaultMaxConns, isSet(p+"max_conns"))
	setDefault(&l.IdleTimeout, hj212src.DefaultIdleTimeout, isSet(p+"idle_timeout"))
	if l.Serial != nil {
		setDefault(&l.Serial.Baud, hj212src.DefaultBaud, isSet(p+"serial.baud"))
	}
	for i := range l.Stations {
		setDefault(&l.Stations[i].Site, site, false)
	}
}

// validateHJ212 checks c.HJ212; names holds every device name seen so far.
func (c *Config) validateHJ212(names map[string]string) problems {
	var ps problems
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	ports := map[string]string{}
	for i, b := range c.Buses {
		if b.Serial != nil && b.Serial.Port != "" {
			ports[b.Serial.Port] = indexPath("buses", i) + ".serial"
		}
	}
	for i, s := range c.PM {
		ports[s.Port] = indexPath("pm", i)
	}
	listens := map[string]string{}
	for i, l := range c.HJ212 {
		p := indexPath("hj212_listen", i)
		ps.deviceName(p, l.Name, names)
		switch {
		case (l.Listen == "") == (l.Serial == nil):
			add(p, "needs exactly one of listen and serial")
		case l.Listen != "":
			if first, dup := listens[l.Listen]; dup {
				add(p+".listen", "%s is also used by %s", l.Listen, first)
			}
			listens[l.Listen] = p
		case l.Serial.Port == "":
			add(p+".serial.port", "required")
		default:
			if first, dup := ports[l.Serial.Port]; dup {
				add(p+".serial.port", "%s is also used by %s; one program owns a serial port", l.Serial.Port, first)
			}
			ports[l.Serial.Port] = p + ".serial"
			if l.Serial.Baud <= 0 {
				add(p+".serial.baud", "must be > 0")
			}
		}
		if _, err := LoadLocation(l.Timezone); err != nil {
			add(p+".timezone", "%v (an IANA name such as Asia/Shanghai)", err)
		}
		if l.MaxConns < 1 || l.MaxConns > 1024 {
			add(p+".max_conns", "must be 1..1024")
		}
		if l.IdleTimeout < time.Minute {
			add(p+".idle_timeout", "must be at least 1m")
		}
		if len(l.Stations) == 0 {
			add(p+".stations", "required: at least one station (mn, device); packets of other MNs are refused")
		}
		mns := map[string]string{}
		for j, st := range l.Stations {
			sp := indexPath(p+".stations", j)
			switch first, dup := mns[st.MN]; {
			case st.MN == "":
				add(sp+".mn", "required")
			case dup:
				add(sp+".mn", "duplicate MN %q (first at %s)", st.MN, first)
			default:
				mns[st.MN] = sp
			}
			ps.site(sp+".site", st.Site, siteFromGateway)
			if st.Device == "" {
				add(sp+".device", "required")
			} else {
				ps.name(sp+".device", st.Device)
				if reading.IsReservedDevice(st.Device) {
					add(sp+".device", "%q is reserved for the gateway's own health readings", st.Device)
				}
				if first, dup := names[st.Device]; dup {
					add(sp+".device", "duplicate device name %q (first at %s)", st.Device, first)
				} else {
					names[st.Device] = sp
				}
			}
			codes := map[string]bool{}
			for k, f := range st.Factors {
				fp := indexPath(sp+".factors", k)
				switch {
				case f.Code == "":
					add(fp+".code", "required")
				case codes[f.Code]:
					add(fp+".code", "duplicate code %q", f.Code)
				}
				codes[f.Code] = true
				if err := reading.CheckQuantity(f.Quantity); err != nil {
					add(fp+".quantity", "%v", err)
				}
				if f.Scale < 0 {
					add(fp+".scale", "must be > 0 (or unset: 1)")
				}
			}
		}
	}
	return ps
}
