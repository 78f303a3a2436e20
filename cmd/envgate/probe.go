package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.bug.st/serial"

	"github.com/envgate/envgate/drivers/modbus"
	"github.com/envgate/envgate/drivers/serialport"
)

const probeUsage = `usage: envgate probe --port DEVICE [--baud 9600] [--parity none] [--stop-bits 1]
                    [--slave 1] [--address 0] [--count 2] [--function 3] [--timeout 1s]
       envgate probe --tcp HOST:PORT | --rtu-over-tcp HOST:PORT [--slave 1] ...

Reads registers from one slave and shows them decoded as every type and word order
side by side, so that the right decoding can be spotted: 16-bit values raw and
scaled by 1/10 and 1/100 (how most RS-485 transmitters send them), 32- and 64-bit
values from each start address in the four word orders. Function 1 or 2 reads bits.
Addresses are protocol addresses, 0-based: a manual's 40001 is holding register 0.

`

// cmdProbe reads registers (or bits) from one slave and prints every decoding of them.
func cmdProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, probeUsage)
		fs.PrintDefaults()
	}
	var bus busFlags
	bus.add(fs, time.Second)
	baud := fs.Int("baud", 9600, "serial `rate` in bit/s")
	parity := fs.String("parity", "none", "serial parity: none, even or odd")
	stopBits := fs.Int("stop-bits", 1, "serial stop bits: 1 or 2")
	slave := fs.Uint("slave", 1, "slave address (the unit id over TCP): 1-247; some devices ship at 255")
	address := fs.String("address", "0", "first protocol `address`, 0-based, decimal or 0x hex")
	count := fs.Uint("count", 2, "how many registers (1-125) or bits (1-2000) to read")
	function := fs.Uint("function", 3, "3 holding registers, 4 input registers, 1 coils, 2 discrete inputs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usageErr := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "envgate probe: "+format+"\n", args...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	line, err := bus.check(fs, *baud, *parity, *stopBits)
	if err != nil {
		return usageErr("%v", err)
	}
	fn := modbus.Function(*function)
	if *function < 1 || *function > 4 {
		return usageErr("--function must be 1 (coils), 2 (discrete inputs), 3 (holding registers) or 4 (input registers)")
	}
	if err := bus.checkSlave(*slave); err != nil {
		return usageErr("%v", err)
	}
	addr, err := strconv.ParseUint(*address, 0, 16)
	if err != nil {
		return usageErr("--address %q: must be a protocol address from 0 to 65535 (a manual's 40001 is 0)", *address)
	}
	limit := uint(125) // MODBUS Application Protocol V1.1b3 §6.3-6.4
	if fn.IsBits() {
		limit = 2000 // §6.1-6.2
	}
	if *count < 1 || *count > limit {
		return usageErr("--count must be between 1 and %d for function %d", limit, fn)
	}
	if addr+uint64(*count)-1 > math.MaxUint16 {
		return usageErr("--address %d with --count %d runs past the last address 65535", addr, *count)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := bus.open(line)
	if err != nil {
		fmt.Fprintf(stderr, "envgate probe: %s\n", bus.openProblem(err))
		return 1
	}
	defer func() { _ = c.Close() }() // read-only session: nothing is lost if closing fails

	id, a, n := uint8(*slave), uint16(addr), uint16(*count)
	what := fmt.Sprintf("%s %s: %s (function %d)", bus.who(id), bus.where(line), describeItems(fn, a, n), fn)
	start := time.Now()
	if fn.IsBits() {
		bits, err := c.ReadBits(ctx, id, fn, a, n)
		if err != nil {
			fmt.Fprintf(stderr, "envgate probe: %s\n", bus.readProblem(err, line, id, fn, a, n))
			return 1
		}
		fmt.Fprintf(stdout, "%s, answered in %v\n\n", what, roundRTT(time.Since(start)))
		writeBits(stdout, fn, a, bits)
		return 0
	}
	regs, err := c.ReadRegisters(ctx, id, fn, a, n)
	if err != nil {
		fmt.Fprintf(stderr, "envgate probe: %s\n", bus.readProblem(err, line, id, fn, a, n))
		return 1
	}
	fmt.Fprintf(stdout, "%s, answered in %v\n\n", what, roundRTT(time.Since(start)))
	writeRegisters(stdout, fn, a, regs)
	return 0
}

// busFlags are the flags of the commissioning commands that say which bus to talk to.
type busFlags struct {
	port, tcp, rtuOverTCP string
	timeout               time.Duration
}

// serialFlags are the flags that apply to --port only.
var serialFlags = []string{"baud", "bauds", "parity", "parities", "stop-bits"}

func (b *busFlags) add(fs *flag.FlagSet, timeout time.Duration) {
	fs.StringVar(&b.port, "port", "", "serial `device` of the RS-485 adapter, e.g. /dev/ttyUSB0 (envgate ports lists them)")
	fs.StringVar(&b.tcp, "tcp", "", "instead of --port: a Modbus TCP device or gateway at `host:port`")
	fs.StringVar(&b.rtuOverTCP, "rtu-over-tcp", "", "instead of --port: a serial device server passing RTU frames, at `host:port`")
	fs.DurationVar(&b.timeout, "timeout", timeout, "how long to wait for an answer")
}

// check validates the bus flags after fs.Parse and returns the serial line settings.
func (b *busFlags) check(fs *flag.FlagSet, baud int, parity string, stopBits int) (lineSettings, error) {
	n := 0
	for _, s := range []string{b.port, b.tcp, b.rtuOverTCP} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return lineSettings{}, errors.New("give one of --port DEVICE, --tcp HOST:PORT and --rtu-over-tcp HOST:PORT (envgate ports lists serial ports)")
	}
	if b.timeout <= 0 {
		return lineSettings{}, errors.New("--timeout must be > 0")
	}
	if b.port == "" {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			for _, s := range serialFlags {
				if f.Name == s {
					set = append(set, "--"+s)
				}
			}
		})
		if len(set) > 0 {
			return lineSettings{}, fmt.Errorf("%s apply to --port only (a TCP device or device server has its own serial settings)", strings.Join(set, ", "))
		}
		return lineSettings{}, nil
	}
	return parseLine(baud, parity, stopBits)
}

// checkSlave validates a slave address for the bus.
func (b *busFlags) checkSlave(id uint) error {
	switch {
	case id > 255:
		return fmt.Errorf("slave %d: must be between 1 and 247 (some devices ship at 255)", id)
	case id == 0 && b.tcp == "":
		return errors.New("slave 0 is the broadcast address, which never answers; use 1-247")
	}
	return nil
}

// open opens the bus; line applies to --port only.
func (b *busFlags) open(line lineSettings) (modbus.Client, error) {
	switch {
	case b.tcp != "":
		c, err := modbus.OpenTCP(b.tcp, false, b.timeout)
		if err != nil {
			return nil, err
		}
		return c, nil
	case b.rtuOverTCP != "":
		c, err := modbus.OpenTCP(b.rtuOverTCP, true, b.timeout)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := modbus.OpenSerial(b.port, modbus.RTUOptions{
		Baud: line.Baud, Parity: line.Parity, StopBits: line.StopBits, Timeout: b.timeout,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// where describes the bus: "/dev/ttyUSB0 at 9600 8N1", "Modbus TCP 10.0.0.5:502".
func (b *busFlags) where(line lineSettings) string {
	switch {
	case b.tcp != "":
		return "at Modbus TCP " + b.tcp
	case b.rtuOverTCP != "":
		return "at RTU over TCP " + b.rtuOverTCP
	}
	return "on " + b.port + " at " + line.String()
}

// who names a slave: "slave 7", or "unit 7" over Modbus TCP.
func (b *busFlags) who(id uint8) string {
	if b.tcp != "" {
		return fmt.Sprintf("unit %d", id)
	}
	return fmt.Sprintf("slave %d", id)
}

// target is the bus flag for a command line that suggests another command.
func (b *busFlags) target() string {
	switch {
	case b.tcp != "":
		return "--tcp " + b.tcp
	case b.rtuOverTCP != "":
		return "--rtu-over-tcp " + b.rtuOverTCP
	}
	return "--port " + b.port
}

// openProblem explains an error from opening the bus, with what to do about it.
func (b *busFlags) openProblem(err error) string {
	if b.port == "" {
		return err.Error() // OpenTCP's errors name the address and what to check
	}
	var pe *serial.PortError
	code := serial.PortErrorCode(-1)
	if errors.As(err, &pe) {
		code = pe.Code()
	}
	// OpenSerial wraps the port's error once with a hint for the service; ours is for
	// a person at a laptop.
	cause := err
	if u := errors.Unwrap(err); u != nil {
		cause = u
	}
	switch {
	case code == serial.PermissionDenied || errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("cannot open %s: %v\n  %s", b.port, cause, hintDialout)
	case code == serial.PortBusy || errors.Is(err, syscall.EBUSY):
		who := serialport.WhoHolds(b.port)
		msg := fmt.Sprintf("cannot open %s: %v", b.port, cause)
		switch {
		case holdsEnvgate(who):
			msg += fmt.Sprintf("\n  it is held by %s: %s", strings.Join(who, ", "), hintStopSelf)
		case len(who) > 0:
			msg += fmt.Sprintf("\n  it is held by %s: close that program first", strings.Join(who, ", "))
		default:
			msg += fmt.Sprintf("\n  another program holds it (sudo fuser -v %s names it); if it is the gateway, %s", b.port, hintStopSelf)
		}
		return msg
	case code == serial.PortNotFound || errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("no such port %s\n  envgate ports lists the serial ports of this machine", b.port)
	case code == serial.InvalidSerialPort || errors.Is(err, syscall.ENOTTY):
		return fmt.Sprintf("%s is not a serial port: %v\n  envgate ports lists the serial ports of this machine", b.port, cause)
	}
	return err.Error()
}

// readProblem explains a failed read of items [addr, addr+count) with function fn from
// slave id, with what to do about it.
func (b *busFlags) readProblem(err error, line lineSettings, id uint8, fn modbus.Function, addr, count uint16) string {
	var exc *modbus.ExceptionError
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, modbus.ErrTimeout):
		return b.noAnswer(line, id)
	case errors.As(err, &exc) && modbus.NoAnswer(err):
		return fmt.Sprintf("the gateway answered with %v: the serial slave %d behind it did not answer;\n"+
			"  check the gateway's serial settings (baud, parity), its wiring and the slave address", exc, id)
	case errors.As(err, &exc):
		msg := fmt.Sprintf("%s answered with %v", b.who(id), exc)
		switch exc.Code {
		case 1:
			other := map[modbus.Function]string{
				modbus.ReadHoldingRegisters: "--function 4 (input registers)",
				modbus.ReadInputRegisters:   "--function 3 (holding registers)",
				modbus.ReadCoils:            "--function 2 (discrete inputs)",
				modbus.ReadDiscreteInputs:   "--function 1 (coils)",
			}[fn]
			msg += fmt.Sprintf("\n  it is there but does not support function %d; try %s", fn, other)
		case 2:
			msg += fmt.Sprintf("\n  it is there but has no %s; check the register map "+
				"(a manual's 40001 is holding register 0, 30001 input register 0) and try a smaller --count",
				describeItems(fn, addr, count))
		default:
			msg += "\n  it is there: the slave address and line settings are right"
		}
		return msg
	case errors.Is(err, modbus.ErrCRC), errors.Is(err, modbus.ErrFrame):
		return fmt.Sprintf("%v\n  garbled reply: something answered %s, but not cleanly; check the baud rate and parity "+
			"(envgate scan %s tries several), the A/B wiring and termination, and that nothing else "+
			"talks on the line (%s)", err, b.where(line), b.target(), hintStopSelf)
	}
	if b.port != "" {
		return fmt.Sprintf("%v\n  is the adapter still plugged in? envgate ports lists the serial ports", err)
	}
	return err.Error()
}

// noAnswer is the message for a slave that did not answer.
func (b *busFlags) noAnswer(line lineSettings, id uint8) string {
	switch {
	case b.tcp != "":
		return fmt.Sprintf("no answer from unit %d at %s: check the unit id (a gateway passes it on as the slave "+
			"address: check its serial settings and the A/B wiring behind it); try envgate scan --tcp %s", id, b.tcp, b.tcp)
	case b.rtuOverTCP != "":
		return fmt.Sprintf("no answer from slave %d through %s: check A/B wiring (swap them), the device server's "+
			"baud rate and parity, and the slave address; try envgate scan --rtu-over-tcp %s", id, b.rtuOverTCP, b.rtuOverTCP)
	}
	return fmt.Sprintf("no answer from slave %d at %s: check A/B wiring (swap them), baud rate, parity and slave "+
		"address; try envgate scan --port %s", id, line, b.port)
}

// lineSettings is the character framing of a serial line (always 8 data bits).
type lineSettings struct {
	Baud     int
	Parity   string // none, even or odd
	StopBits int
}

// String returns the usual short form: "9600 8N1".
func (l lineSettings) String() string {
	if l.Baud == 0 {
		return "tcp"
	}
	return fmt.Sprintf("%d 8%s%d", l.Baud, strings.ToUpper(l.Parity[:1]), l.StopBits)
}

// parseLine checks serial settings given on the command line.
func parseLine(baud int, parity string, stopBits int) (lineSettings, error) {
	p, err := parseParity(parity)
	if err != nil {
		return lineSettings{}, err
	}
	if baud <= 0 {
		return lineSettings{}, fmt.Errorf("--baud %d: must be a rate such as 4800, 9600 or 19200", baud)
	}
	if stopBits != 1 && stopBits != 2 {
		return lineSettings{}, fmt.Errorf("--stop-bits %d: must be 1 or 2", stopBits)
	}
	return lineSettings{Baud: baud, Parity: p, StopBits: stopBits}, nil
}

// parseParity accepts none, even, odd and their initials, in any case.
func parseParity(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "n":
		return "none", nil
	case "even", "e":
		return "even", nil
	case "odd", "o":
		return "odd", nil
	}
	return "", fmt.Errorf("parity %q: must be none, even or odd", s)
}

// describeItems describes what a read covers: "holding registers 1-4", "coil 5".
func describeItems(fn modbus.Function, addr, count uint16) string {
	what := map[modbus.Function]string{
		modbus.ReadCoils:            "coil",
		modbus.ReadDiscreteInputs:   "discrete input",
		modbus.ReadHoldingRegisters: "holding register",
		modbus.ReadInputRegisters:   "input register",
	}[fn]
	if count <= 1 {
		return fmt.Sprintf("%s %d", what, addr)
	}
	return fmt.Sprintf("%ss %d-%d", what, addr, int(addr)+int(count)-1)
}

// manualRef is how manuals number an item: 40001 for holding register 0, 30001 for
// input register 0, 10001 for discrete input 0, 00001 for coil 0 (the "Modicon"
// convention; docs/engineering-notes.md §1.3).
func manualRef(fn modbus.Function, addr uint16) string {
	prefix := map[modbus.Function]int{
		modbus.ReadCoils: 0, modbus.ReadDiscreteInputs: 1, modbus.ReadInputRegisters: 3, modbus.ReadHoldingRegisters: 4,
	}[fn]
	return fmt.Sprintf("%d%04d", prefix, int(addr)+1)
}

// roundRTT rounds a round-trip time for display.
func roundRTT(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// The word orders in the order the tables show them.
var wordOrders = []modbus.WordOrder{modbus.ABCD, modbus.CDAB, modbus.BADC, modbus.DCBA}

// writeRegisters prints the registers read from addr: a table of 16-bit values, then
// the 32-bit and 64-bit values starting at each address in all four word orders.
func writeRegisters(w io.Writer, fn modbus.Function, addr uint16, regs []uint16) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "address\tmanual\thex\tuint16\tint16\tuint16/10\tint16/10\tuint16/100\tint16/100\t")
	for i, r := range regs {
		u, s := int(r), int(int16(r))
		fmt.Fprintf(tw, "%d\t%s\t0x%04X\t%d\t%d\t%s\t%s\t%s\t%s\t\n", int(addr)+i, manualRef(fn, addr+uint16(i)), r, u, s,
			strconv.FormatFloat(float64(u)/10, 'f', 1, 64), strconv.FormatFloat(float64(s)/10, 'f', 1, 64),
			strconv.FormatFloat(float64(u)/100, 'f', 2, 64), strconv.FormatFloat(float64(s)/100, 'f', 2, 64))
	}
	_ = tw.Flush() // w is the terminal or a buffer; a failed write has nowhere to be reported

	for _, group := range []struct {
		bits  int
		types []modbus.DataType
	}{
		{32, []modbus.DataType{modbus.Float32, modbus.Int32, modbus.Uint32}},
		{64, []modbus.DataType{modbus.Float64, modbus.Int64, modbus.Uint64}},
	} {
		n := group.bits / 16
		if len(regs) < n {
			break
		}
		fmt.Fprintf(w, "\n%d-bit values from %d registers at each address (ABCD: high word first; CDAB: low word first;\n"+
			"BADC, DCBA: the same with the bytes of each register swapped); - marks an implausible float:\n\n", group.bits, n)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "address\ttype\t")
		for _, o := range wordOrders {
			fmt.Fprintf(tw, "%s\t", o)
		}
		fmt.Fprintln(tw)
		for i := 0; i+n <= len(regs); i++ {
			for _, t := range group.types {
				fmt.Fprintf(tw, "%d\t%s\t", int(addr)+i, t)
				for _, o := range wordOrders {
					fmt.Fprintf(tw, "%s\t", formatValue(regs[i:i+n], t, o))
				}
				fmt.Fprintln(tw)
			}
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "\nIn the config, a point names what fits: {quantity: ..., function: %d, address: %d, type: float32, order: ABCD, scale: 1}\n", fn, addr)
}

// formatValue decodes regs as type t in word order o for display. Floats that no
// sensor sends (NaN, ±Inf, magnitudes above 1e9 or, other than 0, below 1e-9) show as "-".
func formatValue(regs []uint16, t modbus.DataType, o modbus.WordOrder) string {
	v, err := modbus.Decode(regs, t, o)
	if err != nil {
		return "?"
	}
	switch t {
	case modbus.Float32:
		return formatFloat(v, 32)
	case modbus.Float64:
		return formatFloat(v, 64)
	case modbus.Int64, modbus.Uint64:
		// A float64 holds integers exactly only up to 2^53. Decoding the same registers as
		// float64 gives the value's exact bit pattern in canonical order instead.
		f, err := modbus.Decode(regs, modbus.Float64, o)
		if err != nil {
			return "?"
		}
		u := math.Float64bits(f)
		if t == modbus.Int64 {
			return strconv.FormatInt(int64(u), 10)
		}
		return strconv.FormatUint(u, 10)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// formatFloat formats a decoded float of the given size, or "-" if implausible.
func formatFloat(v float64, bits int) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v), math.IsInf(v, 0), a > 1e9, a != 0 && a < 1e-9:
		return "-"
	case a != 0 && a < 1e-4:
		return strconv.FormatFloat(v, 'g', -1, bits)
	}
	return strconv.FormatFloat(v, 'f', -1, bits)
}

// writeBits prints bits read from addr, one per line.
func writeBits(w io.Writer, fn modbus.Function, addr uint16, bits []bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "address\tmanual\tvalue\t")
	for i, b := range bits {
		v := 0
		if b {
			v = 1
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t\n", int(addr)+i, manualRef(fn, addr+uint16(i)), v)
	}
	_ = tw.Flush()
}
