package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/drivers/modbus"
	"github.com/envgate/envgate/gateway/reading"
)

const scanUsage = `usage: envgate scan --port DEVICE [--slaves 1-247] [--bauds 4800,9600,19200]
                   [--parities none,even] [--stop-bits 1] [--timeout 200ms]
       envgate scan --tcp HOST:PORT | --rtu-over-tcp HOST:PORT [--slaves 1-247] [--timeout 200ms]

Finds the slaves that answer on a bus. For each baud rate and parity it opens the
port once and sends a one-register read (function 3, address 0) to each slave
address; a slave that answers with an exception is there too. Garbled replies hint
at another baud rate or parity. Progress goes to stderr; what was found goes to
stdout as YAML: comments, then a buses: entry to paste into the config.

`

// Defaults of envgate scan. Most RS-485 transmitters ship at 4800 or 9600 8N1
// (docs/engineering-notes.md §4); 8E1 is the Modbus default (Modbus over Serial Line V1.02 §2.5.1).
const (
	defaultScanSlaves   = "1-247"
	defaultScanBauds    = "4800,9600,19200"
	defaultScanParities = "none,even"
	defaultScanTimeout  = 200 * time.Millisecond
)

// Values written into the config snippet. They are placeholders the installer edits:
// the interval is a common polling rate; the bus timeout leaves room for transmitters
// that take ~100 ms to answer (docs/engineering-notes.md §4).
const (
	snippetInterval   = "10s"
	snippetMinTimeout = 500 * time.Millisecond
)

// cmdScan finds the slaves that answer on a bus and prints a config snippet for them.
func cmdScan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, scanUsage)
		fs.PrintDefaults()
	}
	var bus busFlags
	bus.add(fs, defaultScanTimeout)
	slaves := fs.String("slaves", defaultScanSlaves, "slave addresses (unit ids) to try: `list` of ids and ranges, e.g. 1-10,247")
	bauds := fs.String("bauds", defaultScanBauds, "serial baud rates to try, in this order")
	parities := fs.String("parities", defaultScanParities, "serial parities to try, in this order: none, even, odd")
	stopBits := fs.Int("stop-bits", 1, "serial stop bits: 1 or 2")
	address := fs.String("address", "0", "the register to read, a protocol `address`")
	function := fs.Uint("function", 3, "read with function 3 (holding registers) or 4 (input registers)")
	site := fs.String("site", "site-1", "site `name` written into the snippet's devices")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usageErr := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "envgate scan: "+format+"\n", args...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if _, err := bus.check(fs, 9600, "none", *stopBits); err != nil {
		return usageErr("%v", err)
	}
	ids, err := parseIDs(*slaves, bus.tcp != "")
	if err != nil {
		return usageErr("--slaves: %v", err)
	}
	lines := []lineSettings{{}} // TCP: one pass, no line settings
	if bus.port != "" {
		if lines, err = parseLines(*bauds, *parities, *stopBits); err != nil {
			return usageErr("%v", err)
		}
	}
	fn := modbus.Function(*function)
	if fn != modbus.ReadHoldingRegisters && fn != modbus.ReadInputRegisters {
		return usageErr("--function must be 3 (holding registers) or 4 (input registers)")
	}
	addr, err := strconv.ParseUint(*address, 0, 16)
	if err != nil {
		return usageErr("--address %q: must be a protocol address from 0 to 65535", *address)
	}
	if err := reading.CheckName(*site); err != nil {
		return usageErr("--site %q: %v", *site, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := &scan{bus: &bus, ids: ids, lines: lines, fn: fn, addr: uint16(addr)}
	prog := &scanProgress{w: stderr, tty: isTerminal(stderr), total: len(ids) * len(lines), start: time.Now()}
	failure := s.run(ctx, prog)
	prog.clear()

	r := s.report(*site)
	if failure != "" {
		fmt.Fprintf(stderr, "envgate scan: %s\n", failure)
		if len(s.hits) == 0 {
			return 1
		}
	}
	if len(s.hits) == 0 {
		fmt.Fprintf(stderr, "envgate scan: %s\n", s.nothingFound())
		for _, h := range r.hints {
			fmt.Fprintf(stderr, "  %s\n", h)
		}
		return 1
	}
	fmt.Fprint(stdout, r.text)
	if failure != "" {
		return 1
	}
	return 0
}

// scan is one run of envgate scan.
type scan struct {
	bus   *busFlags
	ids   []uint8
	lines []lineSettings // in scan order; one zero value over TCP
	fn    modbus.Function
	addr  uint16

	hits    []scanHit // in scan order
	garbled []scanGarble
	took    time.Duration
	partial bool // interrupted or failed before every line was scanned
}

// scanHit is a slave that answered: with data, or with an exception.
type scanHit struct {
	id   uint8
	line lineSettings
	rtt  time.Duration
	exc  *modbus.ExceptionError
}

// scanGarble is a reply that came back broken: something is there, but the line
// settings (or the wiring) are wrong.
type scanGarble struct {
	id   uint8
	line lineSettings
	err  error
}

// run scans every line setting and slave id. It returns "" when done or what went
// wrong (an interrupt, a port that cannot be opened or fails).
func (s *scan) run(ctx context.Context, prog *scanProgress) string {
	start := time.Now()
	defer func() { s.took = time.Since(start) }()
	found := map[uint8]bool{}
	for _, line := range s.lines {
		prog.label = s.bus.where(line)
		c, err := s.bus.open(line)
		if err != nil {
			s.partial = true
			return s.bus.openProblem(err)
		}
		for _, id := range s.ids {
			t0 := time.Now()
			_, err := c.ReadRegisters(ctx, id, s.fn, s.addr, 1)
			rtt := time.Since(t0)
			var exc *modbus.ExceptionError
			switch {
			case modbus.NoAnswer(err):
				// Silence, or a gateway's exception 0A/0B: nobody at this address.
			case err == nil || errors.As(err, &exc):
				s.hits = append(s.hits, scanHit{id: id, line: line, rtt: rtt, exc: exc})
				if !found[id] {
					found[id] = true
					prog.found = len(found)
					note := ""
					if exc != nil {
						note = fmt.Sprintf(", %v", exc)
					}
					prog.printf("found %s %s (%v%s)\n", s.bus.who(id), s.bus.where(line), roundRTT(rtt), note)
				}
			case errors.Is(err, modbus.ErrCRC), errors.Is(err, modbus.ErrFrame):
				s.garbled = append(s.garbled, scanGarble{id: id, line: line, err: err})
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
				_ = c.Close() // read-only session
				s.partial = true
				return "interrupted; what was found so far follows"
			default:
				_ = c.Close()
				s.partial = true
				return s.bus.readProblem(err, line, id, s.fn, s.addr, 1)
			}
			prog.step(len(found))
		}
		_ = c.Close() // read-only session: nothing is lost if closing fails
		prog.lineDone()
	}
	return ""
}

// nothingFound says what to check when no slave answered.
func (s *scan) nothingFound() string {
	ids := formatIDs(s.ids)
	if s.bus.port == "" {
		return fmt.Sprintf("no answer from units %s %s: check the address and unit ids, and behind a gateway "+
			"its serial settings and the A/B wiring (swap them)", ids, s.bus.where(lineSettings{}))
	}
	var tried []string
	for _, l := range s.lines {
		tried = append(tried, l.String())
	}
	return fmt.Sprintf("no answer from slaves %s on %s at %s: check A/B wiring (swap them) and power, "+
		"then try other rates and parities: --bauds 1200,2400,4800,9600,19200,38400,57600,115200 --parities none,even,odd",
		ids, s.bus.port, strings.Join(tried, ", "))
}

// scanReport is what a scan found, as text for stdout (YAML: comments and a buses:
// entry) and hints that also make sense when nothing was found.
type scanReport struct {
	text  string
	hints []string
}

// report renders the results. The bus in the snippet gets the line setting at which
// the most slaves answered (the first in scan order on a tie); slaves found only at
// other settings are listed in comments.
func (s *scan) report(site string) scanReport {
	var r scanReport
	counts := make([]int, len(s.lines))
	first := map[uint8]scanHit{}     // each slave's first answer in scan order
	lineOf := map[uint8][]string{}   // every setting each slave answered at
	at := map[lineSettings][]uint8{} // slaves answering at each setting
	var order []uint8                // slaves in the order found
	for _, h := range s.hits {
		if _, ok := first[h.id]; !ok {
			first[h.id] = h
			order = append(order, h.id)
		}
		lineOf[h.id] = append(lineOf[h.id], h.line.String())
		at[h.line] = append(at[h.line], h.id)
		counts[slices.Index(s.lines, h.line)]++
	}
	best := 0
	for i, n := range counts {
		if n > counts[best] {
			best = i
		}
	}
	line := s.lines[best]
	devices := slices.Sorted(slices.Values(at[line]))

	// Garbled replies at settings where nobody answered cleanly hint at the device's
	// real settings being near; at settings with answers they point to noise or a
	// slow device.
	byLine := map[lineSettings][]uint8{}
	var garbledLines []lineSettings
	for _, g := range s.garbled {
		if _, ok := byLine[g.line]; !ok {
			garbledLines = append(garbledLines, g.line)
		}
		byLine[g.line] = append(byLine[g.line], g.id)
	}
	for _, l := range garbledLines {
		where := "at " + l.String()
		if s.bus.port == "" {
			where = s.bus.where(l)
		}
		r.hints = append(r.hints, fmt.Sprintf("garbled replies %s from slave address(es) %s: something is on the line "+
			"but the baud rate or parity is not quite right, the A/B wires are swapped or unterminated, or the "+
			"device is slower than --timeout %v", where, formatIDs(slices.Compact(slices.Sorted(slices.Values(byLine[l])))), s.bus.timeout))
	}
	if s.bus.port == "" && len(s.ids) >= 3 && len(devices) == len(s.ids) {
		r.hints = append(r.hints, fmt.Sprintf("every unit id answered: the device ignores the unit id, so only unit %d "+
			"is listed; a device behind a gateway would answer at its own address only", devices[0]))
		devices = devices[:1]
	}

	var b strings.Builder
	scanned := formatIDs(s.ids)
	var tried []string
	for _, l := range s.lines {
		tried = append(tried, l.String())
	}
	if s.bus.port != "" {
		fmt.Fprintf(&b, "# envgate scan --port %s: slaves %s at %s: %d found in %v\n",
			s.bus.port, scanned, strings.Join(tried, ", "), len(first), s.took.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(&b, "# envgate scan %s: units %s: %d found in %v\n", s.bus.target(), scanned, len(first), s.took.Round(100*time.Millisecond))
	}
	if s.partial {
		b.WriteString("# the scan did not finish: slaves past the interruption were not tried\n")
	}
	var slowest time.Duration
	for _, id := range order {
		h := first[id]
		slowest = max(slowest, h.rtt)
		fmt.Fprintf(&b, "#   %s", s.bus.who(id))
		if s.bus.port != "" {
			fmt.Fprintf(&b, " at %s", h.line)
		}
		fmt.Fprintf(&b, ": answered in %v", roundRTT(h.rtt))
		switch {
		case h.exc == nil:
		case h.exc.Code == 1:
			fmt.Fprintf(&b, " with %v (it is there; try the other register function)", h.exc)
		case h.exc.Code == 2:
			fmt.Fprintf(&b, " with %v (it is there; its registers are elsewhere)", h.exc)
		default:
			fmt.Fprintf(&b, " with %v (it is there)", h.exc)
		}
		if more := lineOf[id][1:]; len(more) > 0 {
			fmt.Fprintf(&b, "; also at %s", strings.Join(more, ", "))
		}
		b.WriteString("\n")
	}
	var elsewhere []uint8
	for _, id := range order {
		if !slices.Contains(at[line], id) {
			elsewhere = append(elsewhere, id)
		}
	}
	if len(elsewhere) > 0 {
		r.hints = append(r.hints, fmt.Sprintf("slave(s) %s did not answer at %s like the others: all devices on one "+
			"line need the same baud rate and parity; change theirs with the vendor's tool (see the manual: "+
			"usually a holding register written with function 6), then scan again", formatIDs(elsewhere), line))
	}
	if s.bus.port != "" && len(s.lines) > 1 && slices.ContainsFunc(order, func(id uint8) bool { return len(lineOf[id]) > 1 }) {
		r.hints = append(r.hints, "a slave that answers at several settings is listed at the first one tried; "+
			"a pty, or a device with automatic baud rate detection, answers at any")
	}
	if len(r.hints) > 0 {
		b.WriteString("# hints:\n")
		for _, h := range r.hints {
			fmt.Fprintf(&b, "#   %s\n", h)
		}
	}
	if len(devices) > 0 {
		s.writeSnippet(&b, line, devices, site, slowest)
	}
	r.text = b.String()
	return r
}

// writeSnippet writes a buses: entry with one device per slave in ids. Keys are those
// of config.Bus; the test parses the result with config.Parse.
func (s *scan) writeSnippet(b *strings.Builder, line lineSettings, ids []uint8, site string, slowest time.Duration) {
	timeout := max(snippetMinTimeout, (4*slowest + 99*time.Millisecond).Truncate(100*time.Millisecond))
	b.WriteString("buses:\n")
	switch {
	case s.bus.port != "":
		port := stableName(s.bus.port)
		fmt.Fprintf(b, "  - name: %s\n", busName("rs485", filepath.Base(evalOr(s.bus.port))))
		b.WriteString("    serial:\n")
		fmt.Fprintf(b, "      port: %s", strconv.Quote(port))
		if port != s.bus.port {
			fmt.Fprintf(b, "  # %s; envgate ports explains the name", s.bus.port)
		}
		b.WriteString("\n")
		fmt.Fprintf(b, "      baud: %d\n      data_bits: 8\n      parity: %s\n      stop_bits: %d\n", line.Baud, line.Parity, line.StopBits)
	case s.bus.tcp != "":
		fmt.Fprintf(b, "  - name: %s\n", busName("tcp", s.bus.tcp))
		fmt.Fprintf(b, "    tcp:\n      address: %s\n", strconv.Quote(s.bus.tcp))
	default:
		fmt.Fprintf(b, "  - name: %s\n", busName("rtu-tcp", s.bus.rtuOverTCP))
		fmt.Fprintf(b, "    rtu_over_tcp:\n      address: %s\n", strconv.Quote(s.bus.rtuOverTCP))
	}
	fmt.Fprintf(b, "    timeout: %v  # the slowest answered in %v\n", timeout, roundRTT(slowest))
	b.WriteString("    devices:\n")
	probe := "envgate probe " + s.bus.target()
	if s.bus.port != "" {
		probe += fmt.Sprintf(" --baud %d --parity %s --stop-bits %d", line.Baud, line.Parity, line.StopBits)
	}
	for _, id := range ids {
		fmt.Fprintf(b, "      - name: dev-%d\n", id)
		fmt.Fprintf(b, "        slave: %d\n", id)
		fmt.Fprintf(b, "        site: %s\n", site)
		fmt.Fprintf(b, "        # profile: %s\n", profileHint(line, id))
		fmt.Fprintf(b, "        interval: %s\n", snippetInterval)
		b.WriteString("        points:\n")
		fmt.Fprintf(b, "          # placeholder: replace with the registers from the device's manual, or name a\n"+
			"          # profile above and drop the points; to see every decoding of registers 0-3:\n"+
			"          #   %s --slave %d --address 0 --count 4\n", probe, id)
		b.WriteString("          - {quantity: temperature, function: 3, address: 0, type: uint16, scale: 1}\n")
	}
}

// profileHint suggests built-in profiles for a slave found at line: those whose
// factory settings match, else the list of all.
func profileHint(line lineSettings, id uint8) string {
	var match, all []string
	for _, p := range config.BuiltinProfiles() {
		all = append(all, p.Name)
		d := p.Defaults
		if d.Slave == int(id) && (line.Baud == 0 || d.Baud == line.Baud && d.Parity == line.Parity) {
			match = append(match, p.Name)
		}
	}
	if len(match) > 0 {
		ships := fmt.Sprintf("slave %d", id)
		if line.Baud != 0 {
			ships += " at " + line.String()
		}
		return fmt.Sprintf("%s  (these ship as %s: %s; all built-in profiles: docs/devices.md)", match[0], ships, strings.Join(match, ", "))
	}
	return fmt.Sprintf("NAME  (built-in: %s; docs/devices.md)", strings.Join(all, ", "))
}

// busName makes a bus name (reading.CheckName) from a prefix and a device or address.
func busName(prefix, s string) string {
	name := []rune(prefix + "-")
	for _, c := range s {
		if c > 127 || !(c == '-' || c == '_' || c == '.' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			c = '-'
		}
		name = append(name, c)
	}
	return string(name[:min(len(name), reading.MaxNameLen)])
}

// evalOr resolves symlinks in path, or returns path.
func evalOr(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// parseIDs parses a list of slave addresses and ranges ("1-10,247") into sorted,
// unique ids. Address 0 (broadcast) is allowed only when zeroOK (a Modbus TCP unit id).
func parseIDs(s string, zeroOK bool) ([]uint8, error) {
	var seen [256]bool
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(strings.TrimSpace(hi))
		}
		switch {
		case err != nil || part == "":
			return nil, fmt.Errorf("%q: want ids and ranges such as 1-10,247", part)
		case a > b:
			return nil, fmt.Errorf("%q: the range runs backwards", part)
		case a < 0 || b > 255:
			return nil, fmt.Errorf("%q: addresses run from 1 to 247 (some devices use up to 255)", part)
		case a == 0 && !zeroOK:
			return nil, fmt.Errorf("%q: 0 is the broadcast address, which never answers; start at 1", part)
		}
		for i := a; i <= b; i++ {
			seen[i] = true
		}
	}
	var ids []uint8
	for i, ok := range seen {
		if ok {
			ids = append(ids, uint8(i))
		}
	}
	return ids, nil
}

// formatIDs writes sorted ids compactly: "1-5, 7".
func formatIDs(ids []uint8) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(int(ids[i])))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// parseLines parses --bauds and --parities into the line settings to scan, in order:
// every parity at the first rate, then at the next.
func parseLines(bauds, parities string, stopBits int) ([]lineSettings, error) {
	var rates []int
	for f := range strings.SplitSeq(bauds, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--bauds: %q is not a baud rate; want a list such as 4800,9600", f)
		}
		if !slices.Contains(rates, n) {
			rates = append(rates, n)
		}
	}
	var ps []string
	for f := range strings.SplitSeq(parities, ",") {
		p, err := parseParity(f)
		if err != nil {
			return nil, fmt.Errorf("--parities: %v", err)
		}
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	var lines []lineSettings
	for _, r := range rates {
		for _, p := range ps {
			l, err := parseLine(r, p, stopBits)
			if err != nil {
				return nil, err
			}
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// scanProgress draws a single status line on a terminal ("\r" redraws it), or, when
// stderr is not a terminal, one line per line setting scanned.
type scanProgress struct {
	w     io.Writer
	tty   bool
	total int
	start time.Time
	label string // the line setting being scanned

	done, found int
	drawn       time.Time // when the line was last drawn
	width       int       // length of the drawn line, to blank it
}

// redrawEvery bounds how often the terminal line is redrawn.
const redrawEvery = 100 * time.Millisecond

// step counts one slave tried; found is how many distinct slaves answered so far.
func (p *scanProgress) step(found int) {
	p.done++
	p.found = found
	if p.tty && time.Since(p.drawn) >= redrawEvery {
		p.draw()
	}
}

// lineDone reports that a line setting has been scanned.
func (p *scanProgress) lineDone() {
	if p.tty {
		p.draw()
		return
	}
	fmt.Fprintf(p.w, "scanned %s: %s\n", p.label, p.status())
}

// status is "37/494 tried, 2 found, ETA 1m12s".
func (p *scanProgress) status() string {
	eta := "?"
	if p.done > 0 {
		per := time.Since(p.start) / time.Duration(p.done)
		eta = (per * time.Duration(p.total-p.done)).Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d tried, %d found, ETA %s", p.done, p.total, p.found, eta)
}

func (p *scanProgress) draw() {
	s := fmt.Sprintf("scanning %s: %s", p.label, p.status())
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", max(0, p.width-len(s))))
	p.width = len(s)
	p.drawn = time.Now()
}

// clear blanks the terminal line.
func (p *scanProgress) clear() {
	if p.tty && p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

// printf prints a message above the progress line.
func (p *scanProgress) printf(format string, args ...any) {
	p.clear()
	fmt.Fprintf(p.w, format, args...)
	if p.tty {
		p.draw()
	}
}

// isTerminal reports whether w is a terminal, where a progress line can be redrawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
