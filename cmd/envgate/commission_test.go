package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"go.bug.st/serial/enumerator"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/drivers/modbus"
	"github.com/envgate/envgate/internal/testsvc"
)

// The commissioning commands (ports, probe, scan) run in-process through run(), against
// pymodbus as an independent Modbus slave: over a socat pty pair for RTU, and over TCP.

// commissionSlaves are what the pymodbus slave serves: slave 7 has a float32 23.5
// (0x41BC 0x0000, ABCD) at holding register 1 and no register 0, so a scan's read of
// register 0 gets exception 02 from it; slave 3 has a noise level (625 = 62.5 dB,
// docs/engineering-notes.md §1.3) at register 0.
var commissionSlaves = map[uint8]testsvc.SlaveData{
	7: {
		Holding: map[uint16]uint16{1: 0x41BC, 2: 0x0000, 3: 0xFF9C, 4: 0x0271},
		Input:   map[uint16]uint16{0: 0x0000, 1: 0x41BC},
		Coils:   map[uint16]bool{0: true, 1: false, 2: true},
	},
	3: {Holding: map[uint16]uint16{0: 625}},
}

// rtuSlave starts pymodbus on one end of a pty pair at 9600 8N1 and returns the other
// end, for envgate to open.
func rtuSlave(t *testing.T) string {
	t.Helper()
	pty := testsvc.PtyPair(t)
	testsvc.StartModbusSlave(t, testsvc.SlaveOptions{Serial: pty.A, Baud: 9600, Slaves: commissionSlaves})
	return pty.B
}

// tcpSlave starts pymodbus as a Modbus TCP server and returns its address.
func tcpSlave(t *testing.T) string {
	t.Helper()
	return testsvc.StartModbusSlave(t, testsvc.SlaveOptions{TCP: true, Slaves: commissionSlaves}).Addr
}

// row returns the fields of the first output line whose leading fields are prefix.
func row(out string, prefix ...string) []string {
	for l := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(prefix) && slices.Equal(f[:len(prefix)], prefix) {
			return f
		}
	}
	return nil
}

// column returns the value in column name of the table row that starts with prefix,
// using the header line that starts with the fields of header.
func column(t *testing.T, out, header, name string, prefix ...string) string {
	t.Helper()
	h, r := row(out, strings.Fields(header)...), row(out, prefix...)
	i := slices.Index(h, name)
	if i < 0 || r == nil || i >= len(r) {
		t.Fatalf("no column %q in a row %q under header %q in:\n%s", name, prefix, header, out)
	}
	return r[i]
}

func TestProbeRTU(t *testing.T) {
	port := rtuSlave(t)
	code, out, errOut := cli("probe", "--port", port, "--baud", "9600", "--parity", "none", "--stop-bits", "1",
		"--slave", "7", "--address", "1", "--count", "4")
	if code != 0 {
		t.Fatalf("probe = %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "slave 7 on "+port+" at 9600 8N1: holding registers 1-4 (function 3)") {
		t.Errorf("probe output does not say what was read:\n%s", out)
	}
	check := func(header, col, want string, prefix ...string) {
		t.Helper()
		if got := column(t, out, header, col, prefix...); got != want {
			t.Errorf("probe: %s in row %q = %q, want %q; output:\n%s", col, prefix, got, want, out)
		}
	}
	// Raw registers: protocol address, the manual's number, hex, decimal.
	check("address", "hex", "0x41BC", "1")
	check("address", "manual", "40002", "1")
	check("address", "uint16", "16828", "1")
	check("address", "int16", "-100", "3")
	check("address", "int16/10", "-10.0", "3")
	check("address", "uint16/10", "62.5", "4")
	// 23.5 is float32 ABCD at address 1; the other orders make nonsense of it.
	check("address type", "ABCD", "23.5", "1", "float32")
	check("address type", "CDAB", "-", "1", "float32")
	check("address type", "ABCD", "1102839808", "1", "int32")
	check("address type", "CDAB", "16828", "1", "uint32")
	// Four registers make one 64-bit value.
	check("address type", "ABCD", "4736660912375333489", "1", "int64")
	if r := row(out, "2", "int64"); r != nil {
		t.Errorf("probe shows a 64-bit value at address 2, past the registers read: %q", r)
	}
}

func TestProbeTCP(t *testing.T) {
	addr := tcpSlave(t)
	code, out, errOut := cli("probe", "--tcp", addr, "--slave", "7", "--function", "4", "--address", "0", "--count", "2")
	if code != 0 {
		t.Fatalf("probe --tcp = %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "unit 7 at Modbus TCP "+addr+": input registers 0-1 (function 4)") {
		t.Errorf("probe --tcp output does not say what was read:\n%s", out)
	}
	// Low word first: 23.5 appears under CDAB.
	if got := column(t, out, "address type", "CDAB", "0", "float32"); got != "23.5" {
		t.Errorf("probe --tcp: float32 CDAB at 0 = %q, want 23.5:\n%s", got, out)
	}
	if got := column(t, out, "address", "manual", "1"); got != "30002" {
		t.Errorf("probe --tcp: manual number of input register 1 = %q, want 30002", got)
	}

	code, out, errOut = cli("probe", "--tcp", addr, "--slave", "7", "--function", "1", "--count", "3")
	if code != 0 {
		t.Fatalf("probe --function 1 = %d, stderr:\n%s", code, errOut)
	}
	for _, want := range [][]string{{"0", "00001", "1"}, {"1", "00002", "0"}, {"2", "00003", "1"}} {
		if r := row(out, want[0]); !slices.Equal(r, want) {
			t.Errorf("probe --function 1: row %q, want %q; output:\n%s", r, want, out)
		}
	}
}

func TestProbeFailures(t *testing.T) {
	port := rtuSlave(t)
	code, out, errOut := cli("probe", "--port", port, "--slave", "9", "--timeout", "300ms")
	want := "no answer from slave 9 at 9600 8N1: check A/B wiring (swap them), baud rate, parity and slave address; try envgate scan"
	if code != 1 || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("probe of a missing slave = %d, stdout %q, stderr %q; want 1, nothing, %q", code, out, errOut, want)
	}

	// Slave 7 has no register 0: it answers with exception 02, and the hint names the
	// 40001 convention.
	code, _, errOut = cli("probe", "--port", port, "--slave", "7", "--address", "0", "--count", "2")
	if code != 1 || !strings.Contains(errOut, "exception 02 (illegal data address)") || !strings.Contains(errOut, "40001") {
		t.Errorf("probe of a missing register = %d, stderr %q; want 1 and exception 02 with a hint", code, errOut)
	}

	missing := filepath.Join(t.TempDir(), "ttyUSB9")
	code, _, errOut = cli("probe", "--port", missing)
	if code != 1 || !strings.Contains(errOut, "no such port "+missing) || !strings.Contains(errOut, "envgate ports") {
		t.Errorf("probe of a missing port = %d, stderr %q; want 1, no such port, envgate ports", code, errOut)
	}
}

func TestProbeUsage(t *testing.T) {
	check := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := cli(append([]string{"probe"}, args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("envgate probe %q = %d, stdout %q, stderr %q; want 2, nothing, %q", args, code, out, errOut, want)
		}
	}
	check("give one of --port")
	check("give one of --port", "--port", "/dev/ttyUSB0", "--tcp", "127.0.0.1:502")
	check("--baud apply to --port only", "--tcp", "127.0.0.1:502", "--baud", "4800")
	check("broadcast", "--port", "/dev/ttyUSB0", "--slave", "0")
	check("--count must be between 1 and 125", "--port", "/dev/ttyUSB0", "--count", "126")
	check("runs past the last address", "--port", "/dev/ttyUSB0", "--address", "0xFFFF", "--count", "2")
	check(`parity "x"`, "--port", "/dev/ttyUSB0", "--parity", "x")
	check("--function must be", "--port", "/dev/ttyUSB0", "--function", "5")
}

// TestProbeOpenProblems checks the advice for a port that cannot be opened. The tests
// run as root, which ignores permissions and TIOCEXCL, so the errors are made up; the
// holder of a busy port is real.
func TestProbeOpenProblems(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyUSB0")
	f, err := os.Create(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := busFlags{port: dev}

	got := b.openProblem(fmt.Errorf("open %s: %w", dev, syscall.EACCES))
	if !strings.Contains(got, "sudo usermod -aG dialout $USER, then log in again") {
		t.Errorf("permission denied: %q does not say how to join dialout", got)
	}
	got = b.openProblem(fmt.Errorf("open %s: %w", dev, syscall.EBUSY))
	if self := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(got, self) {
		t.Errorf("port busy: %q does not name the holder %s", got, self)
	}
	if got := (&busFlags{port: dev}).openProblem(fmt.Errorf("x: %w", syscall.EBUSY)); !strings.Contains(got, "close that program") {
		t.Errorf("port busy: %q does not say what to do", got)
	}
	if !holdsEnvgate([]string{"pid 12 (minicom)", "pid 812 (envgate)"}) || holdsEnvgate([]string{"pid 12 (minicom)"}) {
		t.Error("holdsEnvgate does not recognise envgate")
	}
}

// TestProbeReadProblems checks the advice for replies pymodbus does not send.
func TestProbeReadProblems(t *testing.T) {
	b := &busFlags{port: "/dev/ttyUSB0"}
	line := lineSettings{Baud: 4800, Parity: "even", StopBits: 1}
	check := func(err error, want ...string) {
		t.Helper()
		got := b.readProblem(err, line, 7, modbus.ReadHoldingRegisters, 0, 2)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("readProblem(%v) = %q, want it to contain %q", err, got, w)
			}
		}
	}
	check(&modbus.ExceptionError{Function: 3, Code: 1}, "exception 01 (illegal function)", "try --function 4")
	check(fmt.Errorf("read: %w", modbus.ErrCRC), "bad CRC", "garbled reply", "at 4800 8E1", "envgate scan --port /dev/ttyUSB0")
	check(fmt.Errorf("read: %w", modbus.ErrTimeout), "no answer from slave 7 at 4800 8E1: check A/B wiring (swap them)")
	check(fmt.Errorf("serial port: %w", syscall.EIO), "still plugged in", "envgate ports")
}

func TestProbeFormatValue(t *testing.T) {
	check := func(v float64, typ modbus.DataType, o modbus.WordOrder, want string) {
		t.Helper()
		regs, err := modbus.Encode(v, typ, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatValue(regs, typ, o); got != want {
			t.Errorf("formatValue(%04X, %s, %s) = %q, want %q", regs, typ, o, got, want)
		}
	}
	check(23.5, modbus.Float32, modbus.CDAB, "23.5")
	check(-0.125, modbus.Float64, modbus.DCBA, "-0.125")
	check(2e9, modbus.Float32, modbus.ABCD, "-")
	check(1e-12, modbus.Float64, modbus.ABCD, "-")
	check(0.00005, modbus.Float32, modbus.ABCD, "5e-05")
	check(-2, modbus.Int64, modbus.CDAB, "-2")
	check(-40000, modbus.Int32, modbus.BADC, "-40000")
	// Past 2^53 a float64 cannot hold every integer: the digits must still be exact.
	for _, want := range []string{"18446744073709551615", "9007199254740993"} {
		var regs [4]uint16
		var u uint64
		fmt.Sscan(want, &u)
		for i := range regs {
			regs[i] = uint16(u >> (48 - 16*i))
		}
		if got := formatValue(regs[:], modbus.Uint64, modbus.ABCD); got != want {
			t.Errorf("formatValue(%04X, uint64, ABCD) = %q, want %q", regs, got, want)
		}
	}
	if got := formatValue([]uint16{0x7FC0, 0}, modbus.Float32, modbus.ABCD); got != "-" {
		t.Errorf("formatValue(NaN) = %q, want -", got)
	}
}

// scanConfig wraps a scan's stdout in a gateway and parses it as a config file.
func scanConfig(t *testing.T, out string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg, err := config.Parse([]byte("gateway:\n  id: roadside-test\n"+out), path)
	if err != nil {
		t.Fatalf("config.Parse of the scan's snippet: %v\n%s", err, out)
	}
	if len(cfg.Buses) != 1 {
		t.Fatalf("scan snippet has %d buses, want 1:\n%s", len(cfg.Buses), out)
	}
	return cfg
}

// slavesOf lists the slave addresses of a bus's devices, and checks their names.
func slavesOf(t *testing.T, b config.Bus) []int {
	t.Helper()
	var ids []int
	for _, d := range b.Devices {
		if want := fmt.Sprintf("dev-%d", d.Slave); d.Name != want {
			t.Errorf("device for slave %d is named %q, want %q", d.Slave, d.Name, want)
		}
		ids = append(ids, d.Slave)
	}
	return ids
}

func TestScanRTU(t *testing.T) {
	port := rtuSlave(t)

	t.Run("one line setting", func(t *testing.T) {
		code, out, errOut := cli("scan", "--port", port, "--slaves", "1-10", "--bauds", "9600", "--parities", "none")
		if code != 0 {
			t.Fatalf("scan = %d, stderr:\n%s", code, errOut)
		}
		cfg := scanConfig(t, out)
		b := cfg.Buses[0]
		if ids := slavesOf(t, b); !slices.Equal(ids, []int{3, 7}) {
			t.Errorf("scan found slaves %v, want [3 7]:\n%s", ids, out)
		}
		if s := b.Serial; s == nil || s.Port != port || s.Baud != 9600 || s.Parity != "none" || s.StopBits != 1 {
			t.Errorf("scan snippet serial = %+v, want %s at 9600 none 1", s, port)
		}
		// Slave 7 has no register 0: its exception reply counts as present.
		if !strings.Contains(out, "slave 7 at 9600 8N1: answered") || !strings.Contains(out, "exception 02") {
			t.Errorf("scan output does not list slave 7 with its exception:\n%s", out)
		}
		for _, want := range []string{"found slave 3 on " + port + " at 9600 8N1", "10/10 tried, 2 found"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("scan stderr lacks %q:\n%s", want, errOut)
			}
		}
	})

	// A pty has no baud rate: pymodbus answers at whatever rate the scan sets, so this
	// cannot show that the scan finds a device's real rate. It checks what the scan
	// reports: each slave at the first setting in scan order that answered (on real
	// hardware, the device's own), which is the rate pymodbus was started with.
	t.Run("several bauds", func(t *testing.T) {
		code, out, errOut := cli("scan", "--port", port, "--slaves", "3,7", "--bauds", "9600,19200", "--parities", "none")
		if code != 0 {
			t.Fatalf("scan = %d, stderr:\n%s", code, errOut)
		}
		if b := scanConfig(t, out).Buses[0]; b.Serial.Baud != 9600 {
			t.Errorf("scan snippet baud %d, want 9600 (the first answering baud in scan order):\n%s", b.Serial.Baud, out)
		}
		if !strings.Contains(out, "slave 3 at 9600 8N1: answered in") || !strings.Contains(out, "also at 19200 8N1") {
			t.Errorf("scan does not report slave 3 at 9600 first, 19200 too:\n%s", out)
		}
	})

	t.Run("nobody there", func(t *testing.T) {
		code, out, errOut := cli("scan", "--port", port, "--slaves", "1-2", "--bauds", "9600", "--parities", "none")
		want := "no answer from slaves 1-2 on " + port + " at 9600 8N1: check A/B wiring (swap them)"
		if code != 1 || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("scan of empty ids = %d, stdout %q, stderr %q; want 1, nothing, %q", code, out, errOut, want)
		}
	})
}

func TestScanTCP(t *testing.T) {
	addr := tcpSlave(t)
	code, out, errOut := cli("scan", "--tcp", addr, "--slaves", "1-10")
	if code != 0 {
		t.Fatalf("scan --tcp = %d, stderr:\n%s", code, errOut)
	}
	b := scanConfig(t, out).Buses[0]
	if ids := slavesOf(t, b); !slices.Equal(ids, []int{3, 7}) {
		t.Errorf("scan --tcp found units %v, want [3 7]:\n%s", ids, out)
	}
	if !strings.Contains(out, "#   unit 3: answered in") {
		t.Errorf("scan --tcp does not list unit 3:\n%s", out)
	}
	if b.TCP == nil || b.TCP.Address != addr {
		t.Errorf("scan --tcp snippet tcp = %+v, want address %s", b.TCP, addr)
	}
}

// TestScanReport checks how results from several line settings become one bus.
func TestScanReport(t *testing.T) {
	n81 := lineSettings{Baud: 9600, Parity: "none", StopBits: 1}
	n48 := lineSettings{Baud: 4800, Parity: "none", StopBits: 1}
	s := &scan{
		bus:   &busFlags{port: "/nonexistent/ttyUSB0", timeout: defaultScanTimeout},
		ids:   []uint8{1, 2, 3, 4, 5},
		lines: []lineSettings{n48, n81},
		fn:    modbus.ReadHoldingRegisters,
		hits: []scanHit{
			{id: 5, line: n48},
			{id: 1, line: n81}, {id: 4, line: n81},
		},
		garbled: []scanGarble{{id: 2, line: n48, err: modbus.ErrCRC}},
	}
	r := s.report("kerb-12")
	for _, want := range []string{
		"slave(s) 5 did not answer at 9600 8N1 like the others",
		"garbled replies at 4800 8N1 from slave address(es) 2",
	} {
		if !slices.ContainsFunc(r.hints, func(h string) bool { return strings.Contains(h, want) }) {
			t.Errorf("scan hints %q lack %q", r.hints, want)
		}
	}
	cfg := scanConfig(t, r.text)
	if b := cfg.Buses[0]; b.Serial.Baud != 9600 || !slices.Equal(slavesOf(t, b), []int{1, 4}) || b.Devices[0].Site != "kerb-12" {
		t.Errorf("scan snippet: bus at %d baud with slaves %v at site %q; want 9600, [1 4], kerb-12:\n%s",
			b.Serial.Baud, slavesOf(t, b), b.Devices[0].Site, r.text)
	}

	// A Modbus TCP device that ignores the unit id answers them all: list one.
	tcp := &scan{bus: &busFlags{tcp: "10.0.0.5:502"}, ids: []uint8{1, 2, 3}, lines: []lineSettings{{}}}
	for _, id := range tcp.ids {
		tcp.hits = append(tcp.hits, scanHit{id: id})
	}
	r = tcp.report("kerb-12")
	if b := scanConfig(t, r.text).Buses[0]; !slices.Equal(slavesOf(t, b), []int{1}) || !strings.Contains(r.text, "every unit id answered") {
		t.Errorf("scan of a device ignoring unit ids:\n%s", r.text)
	}
}

func TestScanUsage(t *testing.T) {
	check := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := cli(append([]string{"scan"}, args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("envgate scan %q = %d, stdout %q, stderr %q; want 2, nothing, %q", args, code, out, errOut, want)
		}
	}
	check("give one of --port")
	check("--slaves", "--port", "/dev/ttyUSB0", "--slaves", "1-300")
	check("broadcast", "--port", "/dev/ttyUSB0", "--slaves", "0-5")
	check("--bauds", "--port", "/dev/ttyUSB0", "--bauds", "9600,fast")
	check("--parities", "--port", "/dev/ttyUSB0", "--parities", "none,mark")
	check("--bauds apply to --port only", "--tcp", "127.0.0.1:502", "--bauds", "9600")
	check("--site", "--port", "/dev/ttyUSB0", "--site", "kerb side")
}

func TestScanLists(t *testing.T) {
	ids, err := parseIDs("5-7, 1,3, 6, 247", false)
	if want := []uint8{1, 3, 5, 6, 7, 247}; err != nil || !slices.Equal(ids, want) {
		t.Errorf("parseIDs = %v, %v; want %v", ids, err, want)
	}
	if got, want := formatIDs(ids), "1, 3, 5-7, 247"; got != want {
		t.Errorf("formatIDs(%v) = %q, want %q", ids, got, want)
	}
	for _, bad := range []string{"", "1-", "7-3", "256", "a", "1,,2"} {
		if ids, err := parseIDs(bad, false); err == nil {
			t.Errorf("parseIDs(%q) = %v, want an error", bad, ids)
		}
	}
	if ids, err := parseIDs("0-1", true); err != nil || !slices.Equal(ids, []uint8{0, 1}) {
		t.Errorf("parseIDs(0-1) over TCP = %v, %v; want [0 1]", ids, err)
	}
	lines, err := parseLines("9600,4800,9600", "none,E", 1)
	var got []string
	for _, l := range lines {
		got = append(got, l.String())
	}
	if want := []string{"9600 8N1", "9600 8E1", "4800 8N1", "4800 8E1"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseLines = %q, %v; want %q", got, err, want)
	}
}

// TestPortsDescribe builds a /dev tree as udev makes it and checks which name is
// recommended for each kind of adapter (docs/engineering-notes.md §9).
func TestPortsDescribe(t *testing.T) {
	dev := t.TempDir()
	mk := func(names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dev, n), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(dir, name, target string) {
		if err := os.MkdirAll(filepath.Join(dev, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dev, dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	mk("ttyUSB0", "ttyUSB1", "ttyUSB2", "ttyUSB3", "ttyS0")
	link("serial/by-id", "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0", "../../ttyUSB0")
	link("serial/by-path", "pci-0000:00:14.0-usb-0:1:1.0-port0", "../../ttyUSB0")
	// Two CH340s: one by-id name, owned by whichever udev saw last.
	link("serial/by-id", "usb-1a86_USB_Serial-if00-port0", "../../ttyUSB2")
	link("serial/by-path", "pci-0000:00:14.0-usb-0:2:1.0-port0", "../../ttyUSB1")
	link("serial/by-path", "pci-0000:00:14.0-usb-0:3:1.0-port0", "../../ttyUSB2")
	link("edge", "rs485-a", "../ttyUSB0")
	// Two FTDI clones sharing one serial number.
	link("serial/by-id", "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0", "../../ttyUSB3")
	link("serial/by-path", "pci-0000:00:14.0-usb-0:4:1.0-port0", "../../ttyUSB3")
	mk("ttyUSB4")

	usb := func(name, vid, pid, serial string) *enumerator.PortDetails {
		return &enumerator.PortDetails{Name: filepath.Join(dev, name), IsUSB: true, VID: vid, PID: pid, SerialNumber: serial, Product: "USB Serial"}
	}
	infos := describePorts([]*enumerator.PortDetails{
		{Name: filepath.Join(dev, "ttyS0")},
		usb("ttyUSB0", "0403", "6001", "A10K1234"),
		usb("ttyUSB1", "1A86", "7523", ""),
		usb("ttyUSB2", "1A86", "7523", ""),
		usb("ttyUSB3", "0403", "6001", "A50285BI"),
		usb("ttyUSB4", "0403", "6001", "A50285BI"),
	}, dev)

	want := map[string]string{
		"ttyS0":   filepath.Join(dev, "ttyS0"),
		"ttyUSB0": filepath.Join(dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"),
		"ttyUSB1": filepath.Join(dev, "serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0"),
		"ttyUSB2": filepath.Join(dev, "serial/by-path/pci-0000:00:14.0-usb-0:3:1.0-port0"),
		"ttyUSB3": filepath.Join(dev, "serial/by-path/pci-0000:00:14.0-usb-0:4:1.0-port0"),
		"ttyUSB4": filepath.Join(dev, "ttyUSB4"), // no links at all: udev did not run
	}
	var order []string
	for _, in := range infos {
		base := filepath.Base(in.Device)
		order = append(order, base)
		if in.Use != want[base] {
			t.Errorf("%s: use %q (%s), want %q", base, in.Use, in.Why, want[base])
		}
	}
	if want := []string{"ttyUSB0", "ttyUSB1", "ttyUSB2", "ttyUSB3", "ttyUSB4", "ttyS0"}; !slices.Equal(order, want) {
		t.Errorf("ports listed in order %v, want USB first: %v", order, want)
	}
	if in := infos[0]; !slices.Equal(in.Other, []string{filepath.Join(dev, "edge/rs485-a")}) || in.VIDPID != "0403:6001" {
		t.Errorf("ttyUSB0: other links %q, VID:PID %q; want the udev rule's edge/rs485-a, 0403:6001", in.Other, in.VIDPID)
	}
	if in := infos[1]; !strings.Contains(in.Why, "CH340") {
		t.Errorf("ttyUSB1: why %q does not name the CH340", in.Why)
	}

	var out strings.Builder
	writePorts(&out, infos)
	for _, wantLine := range []string{
		filepath.Join(dev, "ttyUSB1") + "  USB 1a86:7523  USB Serial  no serial number",
		"    by-id    " + filepath.Join(dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"),
		"    use      " + want["ttyUSB3"],
	} {
		if !strings.Contains(out.String(), wantLine+"\n") {
			t.Errorf("ports output lacks line %q:\n%s", wantLine, out.String())
		}
	}
}

// TestPortsCommand runs envgate ports on this machine, which may have no serial ports.
func TestPortsCommand(t *testing.T) {
	code, out, errOut := cli("ports")
	switch code {
	case 0:
		if !strings.Contains(out, "    use      ") {
			t.Errorf("ports = 0 without a recommendation:\n%s", out)
		}
	case 1:
		if out != "" || !strings.Contains(errOut, hintNoPorts) {
			t.Errorf("ports = 1, stdout %q, stderr %q; want the no-ports hint", out, errOut)
		}
	default:
		t.Errorf("ports = %d, stderr %q", code, errOut)
	}
	if code, _, errOut := cli("ports", "extra"); code != 2 || !strings.Contains(errOut, "unexpected argument") {
		t.Errorf("ports extra = %d, stderr %q; want 2", code, errOut)
	}
}
