package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimalBus = `
gateway: {id: box-1, site: canal}
buses:
  - name: rs485-a
    serial: {port: /dev/ttyUSB0}
    devices:
      - name: th-1
        slave: 1
        interval: 10s
        points:
          - {quantity: temperature, function: 4, address: 1, type: int16, scale: 0.1}
          - {quantity: rain_rate, function: 2, address: 0}
  - name: station
    tcp: {address: "10.0.0.5:502"}
    devices:
      - {name: water-1, slave: 255, profile: sonbest-sm2121-ph, interval: 60s, site: lock}
`

func TestModbusDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimalBus), "minimal.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	want := []Bus{
		{Name: "rs485-a", Serial: &SerialPort{Port: "/dev/ttyUSB0", Baud: 9600, DataBits: 8, Parity: "none", StopBits: 1},
			Timeout: time.Second, MaxGap: 4, Devices: []ModbusDevice{{Name: "th-1", Slave: 1, Site: "canal", Interval: 10 * time.Second,
				Points: []ModbusPoint{
					{Quantity: "temperature", Function: 4, Address: 1, Type: "int16", Order: "ABCD", Scale: 0.1, Interval: 10 * time.Second},
					{Quantity: "rain_rate", Function: 2, Address: 0, Type: "bool", Order: "ABCD", Scale: 1, Interval: 10 * time.Second},
				}}}},
		{Name: "station", TCP: &TCPEndpoint{Address: "10.0.0.5:502"}, Timeout: time.Second, MaxGap: 4,
			Devices: []ModbusDevice{{Name: "water-1", Slave: 255, Site: "lock", Profile: "sonbest-sm2121-ph", Interval: time.Minute,
				Points: []ModbusPoint{{Quantity: "ph", Function: 3, Address: 0, Type: "uint16", Order: "ABCD", Scale: 0.01, Interval: time.Minute}}}}},
	}
	if !reflect.DeepEqual(cfg.Buses, want) {
		t.Errorf("Parse(minimalBus).Buses =\n%#v\nwant\n%#v", cfg.Buses, want)
	}

	// The same config built in code: Defaults fills the same values and resolves the
	// profile, and calling it again changes nothing.
	built := Config{
		Gateway: Gateway{ID: "box-1", Site: "canal"},
		Buses: []Bus{
			{Name: "rs485-a", Serial: &SerialPort{Port: "/dev/ttyUSB0"}, Devices: []ModbusDevice{{Name: "th-1", Slave: 1, Interval: 10 * time.Second,
				Points: []ModbusPoint{
					{Quantity: "temperature", Function: 4, Address: 1, Type: "int16", Scale: 0.1},
					{Quantity: "rain_rate", Function: 2},
				}}}},
			{Name: "station", TCP: &TCPEndpoint{Address: "10.0.0.5:502"},
				Devices: []ModbusDevice{{Name: "water-1", Slave: 255, Site: "lock", Profile: "sonbest-sm2121-ph", Interval: time.Minute}}},
		},
	}
	built.Defaults()
	built.Defaults()
	if !reflect.DeepEqual(built.Buses, want) {
		t.Errorf("Defaults().Buses =\n%#v\nwant\n%#v", built.Buses, want)
	}
	if err := built.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Parse then Validate() = %v", err)
	}
}

// TestModbusExplicitValues checks that zeros written in the file are kept or
// reported, not replaced by defaults.
func TestModbusExplicitValues(t *testing.T) {
	const base = "gateway: {id: a, site: s}\nbuses:\n  - name: b\n"
	const dev = "    devices: [{name: d, slave: 1, profile: xy-md02, interval: 1s}]\n"
	cfg, err := Parse([]byte(base+"    serial: {port: /dev/ttyS1, baud: \"19200\", parity: even, stop_bits: 2}\n    max_gap: 0\n    turnaround: 0s\n"+dev), "x.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	if b := cfg.Buses[0]; b.MaxGap != 0 || b.Turnaround != 0 || *b.Serial != (SerialPort{"/dev/ttyS1", 19200, 8, "even", 2}) {
		t.Errorf("bus = %+v, serial %+v", b, *b.Serial)
	}

	check := func(extra, want string) {
		t.Helper()
		_, err := Parse([]byte(base+extra+dev), "x.yaml")
		if got := errLines(err); got != want {
			t.Errorf("Parse(%q) problems:\n%swant:\n%s", extra, got, want)
		}
	}
	check("    serial: {port: p, baud: 0, data_bits: 0, stop_bits: 0}\n",
		"buses[0].serial.baud (line 4): must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200\n"+
			"buses[0].serial.data_bits (line 4): "+dataBits8+"\n"+
			"buses[0].serial.stop_bits (line 4): must be 1 or 2\n")
	check("    tcp: {address: \"h:502\"}\n    timeout: 0s\n", "buses[0].timeout (line 5): must be > 0\n")
	check("    tcp: {address: \":502\"}\n", `buses[0].tcp.address (line 4): must be host:port with a port from 1 to 65535, such as "10.0.0.5:502"`+"\n")
	check("    tcp: {address: \"h:0\"}\n", `buses[0].tcp.address (line 4): must be host:port with a port from 1 to 65535, such as "10.0.0.5:502"`+"\n")
	check("    tcp: {}\n", "buses[0].tcp.address (line 4): required\n")
	check("    serial: [a]\n", "buses[0].serial (line 4): must be a mapping of keys, not a list\n")
	check("    rtu_over_tcp: {address: \"[::1]:4001\"}\n", "")
	_, err = Parse([]byte(base+"    serial: {port: p}\n    devices: [{name: d, slave: 1, interval: 1s, points: []}]\n"), "x.yaml")
	if got, want := errLines(err), "buses[0].devices[0].points (line 5): required: name a profile or list points\n"; got != want {
		t.Errorf("device with empty points: %q, want %q", got, want)
	}
	_, err = Parse([]byte(base+"    serial: {port: p}\n    devices: []\n"), "x.yaml")
	if got, want := errLines(err), "buses[0].devices (line 5): required: list the devices on this bus\n"; got != want {
		t.Errorf("bus with empty devices: %q, want %q", got, want)
	}
	check("    serial: {port: p}\n    Devices: []\n",
		"buses[0].Devices (line 5): unknown key (did you mean \"devices\"?)\n")
	_, err = Parse([]byte(base+"    serial: {port: p}\n"), "x.yaml")
	if got, want := errLines(err), "buses[0].devices (line 3): required: list the devices on this bus\n"; got != want {
		t.Errorf("bus without devices: %q, want %q", got, want)
	}
}

// TestProfileResolution checks the merge: profile points in order, a device point of
// the same quantity replacing the profile's whole, extra points after, intervals from
// the device unless set, and no memory shared with the built-in profiles.
func TestProfileResolution(t *testing.T) {
	cfg, err := Parse([]byte(`
gateway: {id: a, site: s}
buses:
  - name: b
    serial: {port: p}
    devices:
      - name: air
        slave: 3
        profile: outdoor-air-8in1
        interval: 10s
        points:
          - {quantity: pm10, address: 200, type: float32, order: CDAB, interval: 1m, min: 1, max: 900}
          - {quantity: wind_speed, function: 4, address: 100, type: uint16, scale: 0.1}
          - {quantity: co, address: 5, type: uint16, scale: 0.1}
      - {name: th, slave: 4, profile: xy-md02, interval: 30s}
`), "x.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	type row struct {
		q        string
		fn, addr int
		typ, ord string
		scale    float64
		interval time.Duration
	}
	var got []row
	for _, pt := range cfg.Buses[0].Devices[0].Points {
		got = append(got, row{pt.Quantity, pt.Function, pt.Address, pt.Type, pt.Order, pt.Scale, pt.Interval})
	}
	const s10 = 10 * time.Second
	want := []row{
		{"so2", 3, 3, "uint16", "ABCD", 1, s10},
		{"no2", 3, 4, "uint16", "ABCD", 1, s10},
		{"co", 3, 5, "uint16", "ABCD", 0.1, s10},
		{"o3", 3, 6, "uint16", "ABCD", 1, s10},
		{"pm25", 3, 7, "uint16", "ABCD", 1, s10},
		{"pm10", 3, 200, "float32", "CDAB", 1, time.Minute},
		{"temperature", 3, 9, "int16", "ABCD", 0.1, s10},
		{"humidity", 3, 10, "uint16", "ABCD", 0.1, s10},
		{"wind_speed", 4, 100, "uint16", "ABCD", 0.1, s10},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolved points =\n%v\nwant\n%v", got, want)
	}
	pm10 := cfg.Buses[0].Devices[0].Points[5]
	if pm10.Min == nil || *pm10.Min != 1 || *pm10.Max != 900 {
		t.Errorf("pm10 range = %v, %v", pm10.Min, pm10.Max)
	}
	th := cfg.Buses[0].Devices[1].Points
	if len(th) != 2 || th[0].Interval != 30*time.Second || th[1].Quantity != "humidity" {
		t.Errorf("xy-md02 points = %+v", th)
	}

	// Resolving again changes nothing.
	before := slices.Clone(cfg.Buses[0].Devices[0].Points)
	cfg.Defaults()
	if !reflect.DeepEqual(cfg.Buses[0].Devices[0].Points, before) {
		t.Errorf("Defaults after Parse changed the points:\n%+v\nwant\n%+v", cfg.Buses[0].Devices[0].Points, before)
	}

	// Changing a resolved point or a returned profile changes no built-in profile.
	th[0].Scale = 99
	ps := BuiltinProfiles()
	ps[0].Points[0].Scale = 42
	ps[0].Points = nil
	for _, p := range BuiltinProfiles() {
		for _, pt := range p.Points {
			if pt.Scale == 99 || pt.Scale == 42 {
				t.Errorf("built-in profile %s changed: %+v", p.Name, pt)
			}
		}
		if len(p.Points) == 0 {
			t.Errorf("built-in profile %s lost its points", p.Name)
		}
	}
}

func TestBuiltinProfiles(t *testing.T) {
	if ps := builtinProfiles().probs; len(ps) > 0 {
		t.Fatalf("built-in profiles have problems:\n%s", errLines(ps.err()))
	}
	var names []string
	for _, p := range BuiltinProfiles() {
		names = append(names, p.Name)
		if p.Description == "" || p.Source == "" {
			t.Errorf("profile %s: description %q, source %q; both are required of a built-in profile", p.Name, p.Description, p.Source)
		}
		if d := p.Defaults; d.Baud == 0 || d.Slave == 0 {
			t.Errorf("profile %s: defaults %+v; a built-in profile gives baud and slave", p.Name, d)
		}
	}
	want := []string{"float32-water-probe", "generic-noise", "outdoor-air-8in1", "sonbest-sm2121-ph", "xy-md02"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("BuiltinProfiles() names = %v, want %v", names, want)
	}
}

func TestParseProfile(t *testing.T) {
	p, err := ParseProfile([]byte(`
name: acme-do
points:
  - {quantity: do, function: 4, address: 0x10, type: float32, order: CDAB, interval: 5m}
  - {quantity: water_temperature, function: 4, address: 0x12, type: float32, order: CDAB, offset: -273.15}
  - {quantity: turbidity, function: 2, address: 7, min: 0, max: 1}
`), "acme.yaml")
	if err != nil {
		t.Fatalf("ParseProfile:\n%s", errLines(err))
	}
	want := []ModbusPoint{
		{Quantity: "do", Function: 4, Address: 16, Type: "float32", Order: "CDAB", Scale: 1, Interval: 5 * time.Minute},
		{Quantity: "water_temperature", Function: 4, Address: 18, Type: "float32", Order: "CDAB", Scale: 1, Offset: -273.15},
		{Quantity: "turbidity", Function: 2, Address: 7, Type: "bool", Order: "ABCD", Scale: 1, Min: new(0.0), Max: new(1.0)},
	}
	if p.Name != "acme-do" || !reflect.DeepEqual(p.Points, want) {
		t.Errorf("ParseProfile = %+v, want points %+v", p, want)
	}

	for _, tc := range []struct{ in, want string }{
		{"", "name: required\npoints: required: a profile has at least one point\n"},
		{"- a\n", "name: required\npoints: required: a profile has at least one point\n" +
			"line 1: the file must be a mapping with the keys name, description, source, defaults and points, not a list\n"},
		{"name: a b\npoints: []\n", "name (line 1): character ' ' not allowed (letters, digits, '-', '_', '.')\n" +
			"points (line 2): required: a profile has at least one point\n"},
		{"name: x\npoints: [{quantity: la, type: uint16, interval: 0s}]\n", "points[0].interval (line 2): must be > 0\n"},
		{"name: x\npoints: [{quantity: la}]\ndefaults: {parity: mark, data_bits: 6, stop_bits: 3, slave: 256}\n",
			"points[0].type (line 2): required: one of int16, uint16, int32, uint32, int64, uint64, float32, float64, bool\n" +
				"defaults.data_bits (line 3): " + dataBits8 + "\n" +
				"defaults.parity (line 3): must be one of none, even, odd\n" +
				"defaults.stop_bits (line 3): must be 1 or 2\n" +
				"defaults.slave (line 3): must be between 1 and 255\n"},
		{"name: x\npoints: {quantity: la}\n", "points (line 2): must be a list, not a mapping\n"},
	} {
		_, err := ParseProfile([]byte(tc.in), "p.yaml")
		if got := errLines(err); got != tc.want {
			t.Errorf("ParseProfile(%q) problems:\n%swant:\n%s", tc.in, got, tc.want)
		}
	}
}

func TestProfileFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("profiles/acme.yaml", "name: acme-do\npoints:\n  - {quantity: do, function: 4, address: 0, type: float32, order: CDAB}\n")
	write("profiles/again.yaml", "name: acme-do\npoints:\n  - {quantity: do, type: float32}\n")
	write("profiles/builtin.yaml", "# same name as a built-in\nname: xy-md02\npoints:\n  - {quantity: do, type: float32}\n")
	write("profiles/broken.yaml", "name: broken\npoints:\n  - {quantity: do, type: float33}\n")
	write("profiles/big.yaml", strings.Repeat("#", int(MaxProfileFile)+1))
	cfgFile := filepath.Join(dir, "envgate.yaml")
	config := func(files, profile string) string {
		return "gateway: {id: a, site: s}\nprofile_files: [" + files + "]\nbuses:\n  - name: b\n    serial: {port: p}\n" +
			"    devices: [{name: d, slave: 1, interval: 1s, profile: " + profile + "}]\n"
	}
	check := func(name, in, want string) {
		t.Helper()
		cfg, err := Parse([]byte(in), cfgFile)
		if got := errLines(err); got != want {
			t.Errorf("%s: problems:\n%swant:\n%s", name, got, want)
		}
		if err == nil {
			if pts := cfg.Buses[0].Devices[0].Points; len(pts) != 1 || pts[0].Type != "float32" || pts[0].Interval != time.Second {
				t.Errorf("%s: points = %+v", name, pts)
			}
			// A config from Parse remembers its profiles: Validate and Defaults know them.
			if err := cfg.Validate(); err != nil {
				t.Errorf("%s: Validate() = %v", name, err)
			}
			cfg.Defaults()
			if len(cfg.Buses[0].Devices[0].Points) != 1 {
				t.Errorf("%s: Defaults() changed the points: %+v", name, cfg.Buses[0].Devices[0].Points)
			}
		}
	}
	p := func(name string) string { return filepath.Join(dir, "profiles", name) }
	check("relative", config("profiles/acme.yaml", "acme-do"), "")
	check("absolute", config(p("acme.yaml"), "acme-do"), "")
	check("duplicate name", config("profiles/acme.yaml, profiles/again.yaml", "acme-do"),
		p("again.yaml")+`: name (line 1): profile "acme-do" is also defined in `+p("acme.yaml")+"\n")
	check("built-in name", config("profiles/builtin.yaml", "xy-md02"),
		p("builtin.yaml")+`: name (line 2): "xy-md02" is a built-in profile; give yours another name (docs/devices.md)`+"\n")
	// A broken profile is reported in its file, not again by the device using it.
	check("broken", config("profiles/broken.yaml", "broken"),
		p("broken.yaml")+": points[0].type (line 3): must be one of int16, uint16, int32, uint32, int64, uint64, float32, float64, bool\n")
	check("missing", config("profiles/nope.yaml", "acme-do"),
		"profile_files[0] (line 2): cannot read profile: open "+p("nope.yaml")+": no such file or directory\n"+
			`buses[0].devices[0].profile (line 6): unknown profile "acme-do" (known: float32-water-probe, generic-noise, outdoor-air-8in1, sonbest-sm2121-ph, xy-md02)`+"\n")
	check("directory", config("profiles", "xy-md02"),
		"profile_files[0] (line 2): cannot read profile: "+filepath.Join(dir, "profiles")+" is a directory, not a regular file\n")
	check("too big", config("profiles/big.yaml", "xy-md02"),
		"profile_files[0] (line 2): cannot read profile: "+p("big.yaml")+" is larger than 1MiB\n")
}

// TestModbusNames checks that device names are unique across sim devices and every
// bus, and that sites default and are checked.
func TestModbusNames(t *testing.T) {
	_, err := Parse([]byte(`
gateway: {id: a}
devices:
  - {name: d1, site: s, interval: 1s, sim: {kind: air}}
buses:
  - name: "bus 1"
    serial: {port: p}
    devices:
      - {name: d2, slave: 1, profile: xy-md02, interval: 1s, site: s}
      - {name: d1, slave: 2, profile: xy-md02, interval: 1s, site: s}
  - name: b2
    tcp: {address: "h:502"}
    devices:
      - {name: d2, slave: 1, profile: xy-md02, interval: 1s}
      - {name: "", slave: 2, profile: xy-md02, interval: 1s, site: "x y"}
`), "x.yaml")
	want := `buses[0].name (line 6): character ' ' not allowed (letters, digits, '-', '_', '.')
buses[0].devices[1].name (line 10): duplicate device name "d1" (first at devices[0])
buses[1].devices[0].name (line 14): duplicate device name "d2" (first at buses[0].devices[0])
buses[1].devices[0].site (line 14): required (set it here or as gateway.site)
buses[1].devices[1].name (line 15): required
buses[1].devices[1].site (line 15): character ' ' not allowed (letters, digits, '-', '_', '.')
`
	if got := errLines(err); got != want {
		t.Errorf("problems:\n%swant:\n%s", got, want)
	}
}

// TestNumbers checks float fields and the number syntax of int fields.
func TestNumbers(t *testing.T) {
	t.Setenv("ENVGATE_SCALE", "0.25")
	const head = "gateway: {id: a, site: s}\nbuses:\n  - name: b\n    serial: {port: p}\n    devices:\n      - name: d\n        slave: 1\n        interval: 1s\n        points:\n"
	cfg, err := Parse([]byte(head+`          - {quantity: la, address: 0x0A, type: uint16, scale: "${ENVGATE_SCALE}", offset: -3, min: 1e1, max: "150"}
          - {quantity: laeq, address: 0o12, type: uint16, scale: 2}
          - {quantity: temperature, address: 0, type: int16, scale: 1_0}
`), "x.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	pts := cfg.Buses[0].Devices[0].Points
	if pt := pts[0]; pt.Address != 10 || pt.Scale != 0.25 || pt.Offset != -3 || *pt.Min != 10 || *pt.Max != 150 {
		t.Errorf("point = %+v (min %v, max %v)", pt, *pt.Min, *pt.Max)
	}
	if pts[1].Address != 10 || pts[1].Scale != 2 || pts[2].Scale != 10 {
		t.Errorf("points = %+v", pts)
	}
	_, err = Parse([]byte(head+`          - {quantity: la, address: 1.5, type: uint16, scale: .inf, offset: [1], min: true, max: ~}
`), "x.yaml")
	want := `buses[0].devices[0].points[0].address (line 10): must be a whole number, got "1.5"
buses[0].devices[0].points[0].scale (line 10): must be a finite number, got ".inf"
buses[0].devices[0].points[0].offset (line 10): must be a single value, not a list
buses[0].devices[0].points[0].min (line 10): must be a number, got "true"
`
	if got := errLines(err); got != want {
		t.Errorf("problems:\n%swant:\n%s", got, want)
	}
}
