package config

import (
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Bus is one Modbus master port: a serial line (RTU over RS-485), a Modbus TCP
// endpoint, or a serial device server carrying RTU frames over TCP. Exactly one
// transport block is set. One goroutine owns each bus and serialises every device on
// it, so devices that share a wire share a bus.
type Bus struct {
	Name       string         `yaml:"name"`         // required, CheckName, unique among buses
	Serial     *SerialPort    `yaml:"serial"`       // Modbus RTU on a local serial port
	TCP        *TCPEndpoint   `yaml:"tcp"`          // Modbus TCP (MBAP framing)
	RTUOverTCP *TCPEndpoint   `yaml:"rtu_over_tcp"` // RTU frames through a serial device server
	Timeout    time.Duration  `yaml:"timeout"`      // response timeout of one transaction; default 1s; > 0
	Turnaround time.Duration  `yaml:"turnaround"`   // extra silence between transactions; default 0; >= 0
	MaxGap     int            `yaml:"max_gap"`      // merge registers at most this far apart into one request; default 4; 0..123
	Devices    []ModbusDevice `yaml:"devices"`      // at least one
}

// SerialPort is the line settings of a serial bus. The defaults are 9600 8N1, what
// most RS-485 transmitters ship with (docs/engineering-notes.md §4), not the spec's 8E1.
type SerialPort struct {
	Port     string `yaml:"port"`      // required; prefer a stable name (/dev/serial/by-path/..., or a udev symlink)
	Baud     int    `yaml:"baud"`      // default 9600; 1200 2400 4800 9600 19200 38400 57600 115200
	DataBits int    `yaml:"data_bits"` // default 8; must be 8 (kept so that a 7 from a manual gets a clear message)
	Parity   string `yaml:"parity"`    // none|even|odd; default none
	StopBits int    `yaml:"stop_bits"` // default 1; 1 or 2
}

// TCPEndpoint is the address of a Modbus TCP server or a serial device server.
type TCPEndpoint struct {
	Address string `yaml:"address"` // required, host:port, e.g. "10.0.0.5:502"
}

// ModbusDevice is one slave on a bus. After Load, Parse or Defaults, Points holds the
// device's complete point list: its profile's points, each replaced by the device's
// own point of the same quantity, then the device's other points, every one with its
// defaults applied. Profile keeps the profile's name, for information only.
type ModbusDevice struct {
	Name                  string        `yaml:"name"`                     // required, CheckName, unique among all devices of the file
	Slave                 int           `yaml:"slave"`                    // required, 1..255 (247 is the spec's highest; some devices ship at 255)
	Site                  string        `yaml:"site"`                     // default gateway.site; required after defaults
	Profile               string        `yaml:"profile"`                  // optional: a built-in profile or one from profile_files
	Interval              time.Duration `yaml:"interval"`                 // required, > 0; the interval of points that do not set one
	OneRegisterPerRequest bool          `yaml:"one_register_per_request"` // quirk: the device answers only single-value reads
	Points                []ModbusPoint `yaml:"points"`                   // own points; after loading, the resolved list
}

// ModbusPoint is one value read from a device: where it is, how to decode it and what
// it measures.
type ModbusPoint struct {
	Quantity string        `yaml:"quantity"` // required, a catalog quantity (reading.Lookup)
	Function int           `yaml:"function"` // 1 coils, 2 discrete inputs, 3 holding registers, 4 input registers; default 3
	Address  int           `yaml:"address"`  // protocol address, 0-based: 0..65535 ("40001" in a manual is 0)
	Type     string        `yaml:"type"`     // one of pointTypes; default bool for function 1 and 2, required for 3 and 4
	Order    string        `yaml:"order"`    // ABCD|CDAB|BADC|DCBA; default ABCD
	Scale    float64       `yaml:"scale"`    // value = raw × scale + offset; default 1; not 0
	Offset   float64       `yaml:"offset"`   // default 0
	Unit     string        `yaml:"unit"`     // unit of raw × scale + offset, converted to the catalog unit (reading.Convert); default the catalog unit
	Interval time.Duration `yaml:"interval"` // default: the device's interval; > 0
	Min      *float64      `yaml:"min"`      // plausible range; nil: the catalog's
	Max      *float64      `yaml:"max"`
}

// registers returns how many 16-bit registers a value of the point's type occupies
// (as drivers/modbus.Registers); a bool is one bit and counts 1.
func (pt ModbusPoint) registers() int {
	switch pt.Type {
	case "int32", "uint32", "float32":
		return 2
	case "int64", "uint64", "float64":
		return 4
	}
	return 1
}

// Values accepted by validation. Types and orders are those of drivers/modbus
// (DataType, WordOrder), which config does not import; the speeds are the standard
// rates RS-485 transmitters offer (docs/engineering-notes.md §4 lists 1200 to 115200).
var (
	serialBauds  = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}
	parities     = []string{"none", "even", "odd"}
	pointTypes   = []string{"int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool"}
	wordOrders   = []string{"ABCD", "CDAB", "BADC", "DCBA"}
	bitFunctions = []int{1, 2} // read coils, read discrete inputs
)

// Modbus limits (MODBUS Application Protocol V1.1b3 §6.3-6.4: a read of function 3 or
// 4 asks for 1 to 125 registers; addresses are 16-bit).
const (
	maxReadRegisters = 125
	maxAddress       = 65535
	maxSlave         = 255
	// maxGapLimit keeps two single registers max_gap apart within one 125-register read.
	maxGapLimit = maxReadRegisters - 2
)

// dataBits8 explains why data_bits must be 8 (Modbus over Serial Line V1.02 §2.5.1;
// drivers/modbus refuses anything else).
const dataBits8 = "must be 8: Modbus RTU sends 8-bit characters (7 data bits is Modbus ASCII, which envgate does not speak)"

// defaults fills a bus's unset fields; p is the bus's path with a final ".".
func (b *Bus) defaults(p, site string, isSet func(string) bool) {
	setDefault(&b.Timeout, DefaultBusTimeout, isSet(p+"timeout"))
	setDefault(&b.MaxGap, DefaultMaxGap, isSet(p+"max_gap"))
	if s := b.Serial; s != nil {
		setDefault(&s.Baud, DefaultBaud, isSet(p+"serial.baud"))
		setDefault(&s.DataBits, DefaultDataBits, isSet(p+"serial.data_bits"))
		setDefault(&s.Parity, DefaultParity, false)
		setDefault(&s.StopBits, DefaultStopBits, isSet(p+"serial.stop_bits"))
	}
	for j := range b.Devices {
		d := &b.Devices[j]
		dp := p + indexPath("devices", j) + "."
		setDefault(&d.Site, site, false)
		for k := range d.Points {
			d.Points[k].defaults(dp+indexPath("points", k)+".", d.Interval, isSet)
		}
	}
}

// defaults fills a point's unset fields; p is its path with a final ".". interval is
// the device's, or 0 in a profile (the device supplies it when the profile is used).
func (pt *ModbusPoint) defaults(p string, interval time.Duration, isSet func(string) bool) {
	setDefault(&pt.Function, DefaultFunction, isSet(p+"function"))
	if slices.Contains(bitFunctions, pt.Function) {
		setDefault(&pt.Type, "bool", false)
	}
	setDefault(&pt.Order, DefaultOrder, false)
	setDefault(&pt.Scale, DefaultScale, isSet(p+"scale"))
	setDefault(&pt.Interval, interval, isSet(p+"interval"))
}

// resolve replaces the points of every Modbus device that names a known profile with
// the merged list (see ModbusDevice). It is idempotent: resolving a resolved device
// gives the same list.
func (c *Config) resolve() {
	for i := range c.Buses {
		for j := range c.Buses[i].Devices {
			d := &c.Buses[i].Devices[j]
			if p := c.profile(d.Profile); p != nil {
				d.Points = mergePoints(p.Points, d.Points, d.Interval)
			}
		}
	}
}

// mergePoints returns the profile's points in order, each replaced by the first own
// point of the same quantity, followed by the remaining own points. Profile points
// without an interval get interval. The result shares no memory with profile.
func mergePoints(profile, own []ModbusPoint, interval time.Duration) []ModbusPoint {
	out := make([]ModbusPoint, 0, len(profile)+len(own))
	used := make([]bool, len(own))
	for _, pp := range profile {
		k := slices.IndexFunc(own, func(o ModbusPoint) bool { return o.Quantity == pp.Quantity })
		if k >= 0 {
			used[k] = true
			out = append(out, own[k])
			continue
		}
		pt := pp.clone()
		if pt.Interval == 0 {
			pt.Interval = interval
		}
		out = append(out, pt)
	}
	for k, o := range own {
		if !used[k] {
			out = append(out, o)
		}
	}
	return out
}

// clone returns a copy of pt that shares no pointers with it.
func (pt ModbusPoint) clone() ModbusPoint {
	if pt.Min != nil {
		pt.Min = new(*pt.Min)
	}
	if pt.Max != nil {
		pt.Max = new(*pt.Max)
	}
	return pt
}

// profile returns the usable profile called name: one from profile_files, else a
// built-in one; nil if there is none or its file has problems.
func (c *Config) profile(name string) *Profile {
	if name == "" {
		return nil
	}
	if p, ok := c.profiles[name]; ok {
		return p
	}
	return builtinProfiles().byName[name]
}

// profileKnown reports whether name is a profile, usable or not.
func (c *Config) profileKnown(name string) bool {
	_, user := c.profiles[name]
	_, builtin := builtinProfiles().byName[name]
	return user || builtin
}

// profileNames lists every profile name, sorted, for messages.
func (c *Config) profileNames() []string {
	names := slices.Clone(builtinProfiles().names)
	for n := range c.profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// validateBuses checks c.Buses. devices maps the names of top-level devices to their
// paths, so that names are unique across both lists.
func (c *Config) validateBuses(devices map[string]string, inFile func(string) bool) problems {
	var ps problems
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	buses := map[string]int{}
	for i, b := range c.Buses {
		p := indexPath("buses", i)
		ps.name(p+".name", b.Name)
		if first, dup := buses[b.Name]; dup && b.Name != "" {
			add(p+".name", "duplicate bus name %q (first at buses[%d])", b.Name, first)
		} else {
			buses[b.Name] = i
		}

		var kinds []string
		for _, k := range []struct {
			key string
			set bool
		}{{"serial", b.Serial != nil}, {"tcp", b.TCP != nil}, {"rtu_over_tcp", b.RTUOverTCP != nil}} {
			if !k.set && !inFile(p+"."+k.key) {
				continue
			}
			if len(kinds) > 0 {
				add(p+"."+k.key, "set only one transport of serial, tcp and rtu_over_tcp (%s is set too)", kinds[0])
			}
			kinds = append(kinds, k.key)
		}
		if len(kinds) == 0 {
			add(p, "needs a transport block: serial, tcp or rtu_over_tcp")
		}
		if s := b.Serial; s != nil {
			sp := p + ".serial."
			if s.Port == "" {
				add(sp+"port", "required")
			}
			if !slices.Contains(serialBauds, s.Baud) {
				add(sp+"baud", "must be one of %s", joinInts(serialBauds))
			}
			if s.DataBits != 8 {
				add(sp+"data_bits", "%s", dataBits8)
			}
			if !slices.Contains(parities, s.Parity) {
				add(sp+"parity", "must be one of %s", strings.Join(parities, ", "))
			}
			if s.StopBits != 1 && s.StopBits != 2 {
				add(sp+"stop_bits", "must be 1 or 2")
			}
		}
		for _, t := range []struct {
			key string
			e   *TCPEndpoint
		}{{"tcp", b.TCP}, {"rtu_over_tcp", b.RTUOverTCP}} {
			switch {
			case t.e == nil:
			case t.e.Address == "":
				add(p+"."+t.key+".address", "required")
			case !validDial(t.e.Address):
				add(p+"."+t.key+".address", `must be host:port with a port from 1 to 65535, such as "10.0.0.5:502"`)
			}
		}
		if b.Timeout <= 0 {
			add(p+".timeout", "must be > 0")
		}
		if b.Turnaround < 0 {
			add(p+".turnaround", "must be >= 0")
		}
		if b.MaxGap < 0 || b.MaxGap > maxGapLimit {
			add(p+".max_gap", "must be between 0 and %d, so that two registers that far apart fit one %d-register read", maxGapLimit, maxReadRegisters)
		}
		if len(b.Devices) == 0 {
			add(p+".devices", "required: list the devices on this bus")
		}

		slaves := map[int]string{}
		for j, d := range b.Devices {
			dp := p + indexPath(".devices", j)
			ps.deviceName(dp, d.Name, devices)
			switch {
			case d.Slave == 0 && !inFile(dp+".slave"):
				add(dp+".slave", "required")
			case d.Slave == 0:
				add(dp+".slave", "must be between 1 and %d (0 is broadcast, which no device answers)", maxSlave)
			case d.Slave < 0 || d.Slave > maxSlave:
				add(dp+".slave", "must be between 1 and %d", maxSlave)
			default:
				if first, dup := slaves[d.Slave]; dup {
					add(dp+".slave", "duplicate slave %d on this bus (first at %s)", d.Slave, first)
				} else {
					slaves[d.Slave] = dp
				}
			}
			ps.site(dp+".site", d.Site, siteFromGateway)
			switch {
			case d.Interval == 0 && !inFile(dp+".interval"):
				add(dp+".interval", "required")
			case d.Interval <= 0:
				add(dp+".interval", "must be > 0")
			}
			if d.Profile != "" && !c.profileKnown(d.Profile) {
				add(dp+".profile", "unknown profile %q (known: %s)", d.Profile, strings.Join(c.profileNames(), ", "))
			}
			if d.Profile == "" && len(d.Points) == 0 {
				add(dp+".points", "required: name a profile or list points")
			}
			quantities := map[string]string{}
			for k, pt := range d.Points {
				pp := dp + indexPath(".points", k)
				ps = append(ps, pt.validate(pp, d.Interval > 0, inFile)...)
				if first, dup := quantities[pt.Quantity]; dup && pt.Quantity != "" {
					add(pp+".quantity", "duplicate quantity %q (first at %s); a device reads each quantity once", pt.Quantity, first)
				} else {
					quantities[pt.Quantity] = pp
				}
			}
		}
	}
	return ps
}

// validate checks a point at path p. hasInterval reports whether the point's device
// supplies an interval (false in a profile, where it may be left out).
func (pt ModbusPoint) validate(p string, hasInterval bool, inFile func(string) bool) problems {
	var ps problems
	add := func(key, format string, args ...any) { ps.add(p+"."+key, 0, format, args...) }

	q, known := reading.Lookup(pt.Quantity)
	if pt.Quantity == "" {
		add("quantity", "required")
	} else if msg := checkQuantity(pt.Quantity); msg != "" {
		add("quantity", "%s", msg)
	}

	goodFunction := pt.Function >= 1 && pt.Function <= 4
	if !goodFunction {
		add("function", "must be 1 (coils), 2 (discrete inputs), 3 (holding registers) or 4 (input registers)")
	}
	bits := slices.Contains(bitFunctions, pt.Function)
	switch {
	case pt.Type == "" && !inFile(p+".type"):
		add("type", "required: one of %s", strings.Join(pointTypes, ", "))
	case !slices.Contains(pointTypes, pt.Type):
		add("type", "must be one of %s", strings.Join(pointTypes, ", "))
	case !goodFunction:
	case bits && pt.Type != "bool":
		add("type", "function %d reads single bits, so type must be bool, not %s (registers are read with function 3 or 4)", pt.Function, pt.Type)
	case !bits && pt.Type == "bool":
		add("type", "bool is a single bit, read with function 1 or 2; function %d reads registers (use uint16 for a register holding 0 or 1)", pt.Function)
	}
	if !slices.Contains(wordOrders, pt.Order) {
		add("order", "must be one of %s", strings.Join(wordOrders, ", "))
	}
	n := pt.registers()
	switch {
	case pt.Address < 0 || pt.Address > maxAddress:
		add("address", "must be between 0 and %d (a protocol address: 0-based, without the 40001/30001 prefix)", maxAddress)
	case pt.Address+n-1 > maxAddress:
		add("address", "%s at %d needs registers %d to %d, past the last register %d", pt.Type, pt.Address, pt.Address, pt.Address+n-1, maxAddress)
	case n > maxReadRegisters:
		add("type", "%s spans %d registers, more than one read of %d can return", pt.Type, n, maxReadRegisters)
	}
	if pt.Scale == 0 {
		add("scale", "must not be 0 (every value would be the offset)")
	}
	if pt.Interval < 0 || (pt.Interval == 0 && (hasInterval || inFile(p+".interval"))) {
		add("interval", "must be > 0")
	}
	lo, hi := q.Min, q.Max
	if pt.Min != nil {
		lo = *pt.Min
	}
	if pt.Max != nil {
		hi = *pt.Max
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	for _, f := range []struct {
		key string
		v   *float64
	}{{"scale", &pt.Scale}, {"offset", &pt.Offset}, {"min", pt.Min}, {"max", pt.Max}} {
		if f.v != nil && !finite(*f.v) {
			add(f.key, "must be a finite number")
		}
	}
	if known && pt.Unit != "" {
		if err := reading.CheckUnit(pt.Quantity, pt.Unit); err != nil {
			add("unit", "%v", err)
		}
	}
	if (pt.Min != nil || pt.Max != nil) && known && !(lo < hi) {
		switch {
		case pt.Min != nil && pt.Max != nil:
			add("max", "must be greater than min (%g)", lo)
		case pt.Min != nil:
			add("min", "must be less than the catalog's maximum for %s (%g %s); set max too", pt.Quantity, hi, q.Unit)
		default:
			add("max", "must be greater than the catalog's minimum for %s (%g %s); set min too", pt.Quantity, lo, q.Unit)
		}
	}
	return ps
}

// checkQuantity explains why name cannot be the quantity of a reading, or returns "".
func checkQuantity(name string) string {
	if err := reading.CheckQuantity(name); err != nil {
		return err.Error()
	}
	return ""
}

// validDial reports whether s is host:port with a non-empty host and a port from 1 to
// 65535, an address a client can dial.
func validDial(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0 && strconv.FormatUint(n, 10) == port
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
