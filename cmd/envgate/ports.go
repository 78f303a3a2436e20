package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"

	"github.com/envgate/envgate/drivers/serialport"
)

// Hints shared by the commissioning commands (ports, probe, scan).
const (
	hintDialout  = "add your user to the dialout group: sudo usermod -aG dialout $USER, then log in again"
	hintStopSelf = "stop the gateway while commissioning: sudo systemctl stop envgate (start it again afterwards)"
	hintNoPorts  = "no serial ports found; is the USB adapter plugged in? dmesg | tail"
)

// ch340 is the USB VID:PID of WCH's CH340 USB-serial bridge, the chip of most cheap
// RS-485 adapters. It has no serial number, so identical adapters share one
// /dev/serial/by-id name (docs/engineering-notes.md §9).
const ch340 = "1a86:7523"

// cmdPorts lists the serial ports of this machine: device, USB identity, the stable
// names udev made for each, and which name to put in the config.
func cmdPorts(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ports", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: envgate ports\n\n"+
			"Lists the serial ports with their USB VID:PID, serial number and product, the\n"+
			"stable names under /dev/serial pointing at each, and the name to use in the config.\n")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "envgate ports: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	details, err := listPorts()
	if err != nil {
		fmt.Fprintf(stderr, "envgate ports: %v\n", err)
		if len(details) == 0 {
			return 1
		}
	}
	if len(details) == 0 {
		fmt.Fprintln(stderr, hintNoPorts)
		return 1
	}
	writePorts(stdout, describePorts(details, "/dev"))
	return 0
}

// listPorts returns every serial port go.bug.st/serial finds, with the USB details its
// enumerator reads from sysfs. The enumerator gives up on all ports when one sysfs
// entry is unreadable, and returns no name for a port without a sysfs device; then
// the ports are still listed, without details, and the error is returned with them.
func listPorts() ([]*enumerator.PortDetails, error) {
	names, err := serial.GetPortsList()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	detailed, derr := enumerator.GetDetailedPortsList()
	if derr != nil {
		derr = fmt.Errorf("read USB details of serial ports: %w", derr)
	}
	byName := map[string]*enumerator.PortDetails{}
	for _, d := range detailed {
		if d != nil && d.Name != "" {
			byName[d.Name] = d
		}
	}
	out := make([]*enumerator.PortDetails, 0, len(names))
	for _, n := range names {
		if d := byName[n]; d != nil {
			out = append(out, d)
		} else {
			out = append(out, &enumerator.PortDetails{Name: n})
		}
	}
	return out, derr
}

// portInfo is what `envgate ports` shows about one port.
type portInfo struct {
	Device               string // the device node, e.g. /dev/ttyUSB0
	USB                  bool
	VIDPID               string // "0403:6001", lowercase as lsusb prints it
	Serial, Manufacturer string
	Product              string
	ByID, ByPath, Other  []string // names that resolve to Device: /dev/serial/by-id, by-path, other symlinks
	Use, Why             string   // the name to configure, and why
	NoAccess, Held       string   // problems opening it, with what to do; "" when none
	sharedID             bool     // another adapter has the same VID:PID and serial number
}

// describePorts resolves the stable names under devDir (normally /dev) of each port and
// picks the one to configure:
//   - by-id names the adapter by its USB serial number and follows it to any socket;
//   - by-path names the USB socket, for adapters without a serial number (CH340) and
//     for two adapters that share one (their by-id names clash: udev keeps only one);
//   - an on-board UART (ttyS, ttyAMA) keeps its name anyway.
func describePorts(details []*enumerator.PortDetails, devDir string) []portInfo {
	links := symlinksUnder(devDir)
	infos := make([]portInfo, 0, len(details))
	for _, d := range details {
		in := portInfo{
			Device:       d.Name,
			USB:          d.IsUSB,
			Serial:       d.SerialNumber,
			Manufacturer: d.Manufacturer,
			Product:      d.Product,
		}
		if d.VID != "" || d.PID != "" {
			in.VIDPID = strings.ToLower(d.VID + ":" + d.PID)
		}
		real := d.Name
		if r, err := filepath.EvalSymlinks(d.Name); err == nil {
			real = r
		}
		for _, l := range links[real] {
			switch filepath.Dir(l) {
			case filepath.Join(devDir, "serial", "by-id"):
				in.ByID = append(in.ByID, l)
			case filepath.Join(devDir, "serial", "by-path"):
				in.ByPath = append(in.ByPath, l)
			default:
				in.Other = append(in.Other, l)
			}
		}
		infos = append(infos, in)
	}
	// Adapters with the same VID, PID and serial number (cloned FTDI chips often share
	// one) get the same by-id name: whichever udev saw last owns it.
	for i := range infos {
		for j := range infos {
			a, b := &infos[i], &infos[j]
			if i != j && a.USB && b.USB && a.VIDPID == b.VIDPID && a.Serial == b.Serial {
				a.sharedID = true
			}
		}
	}
	for i := range infos {
		infos[i].recommend()
		infos[i].checkAccess()
	}
	slices.SortStableFunc(infos, func(a, b portInfo) int {
		if a.USB != b.USB {
			if a.USB {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Device, b.Device)
	})
	return infos
}

// recommend sets Use and Why.
func (in *portInfo) recommend() {
	first := func(names []string) string {
		if len(names) == 0 {
			return ""
		}
		return names[0]
	}
	byID, byPath := first(in.ByID), first(in.ByPath)
	switch {
	case !in.USB:
		in.Use, in.Why = in.Device, "an on-board UART: its name does not change"
	case in.Serial == "" && byPath != "":
		why := "this adapter has no USB serial number"
		if in.VIDPID == ch340 {
			why = "CH340 adapters (" + ch340 + ") have no USB serial number"
		}
		in.Use, in.Why = byPath, why+", so every adapter of its kind gets the same by-id name; "+
			"by-path names the USB socket: keep the adapter in this socket"
	case in.sharedID && byPath != "":
		in.Use, in.Why = byPath, "another adapter has the same VID:PID and serial number, so their by-id "+
			"names clash; by-path names the USB socket: keep the adapter in this socket"
	case byID != "" && !in.sharedID:
		in.Use, in.Why = byID, "names this adapter by its serial number: it follows the adapter to any USB socket"
	case byPath != "":
		in.Use, in.Why = byPath, "names the USB socket: keep the adapter in this socket"
	default:
		in.Use, in.Why = in.Device, "no stable name under /dev/serial (is udev running?): "+
			"this name can change when adapters are plugged in or out"
	}
}

// checkAccess sets NoAccess and Held: whether this user may open the port, and who
// holds it now.
func (in *portInfo) checkAccess() {
	const rw = 4 | 2 // R_OK | W_OK, access(2)
	if err := syscall.Access(in.Device, rw); err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			in.NoAccess = "you may not open it: " + hintDialout
		} else {
			in.NoAccess = err.Error()
		}
	}
	if who := serialport.WhoHolds(in.Device); len(who) > 0 {
		in.Held = strings.Join(who, ", ") + " has it open"
		if holdsEnvgate(who) {
			in.Held += ": " + hintStopSelf
		}
	}
}

// holdsEnvgate reports whether one of WhoHolds's "pid N (name)" entries is envgate.
func holdsEnvgate(who []string) bool {
	return slices.ContainsFunc(who, func(s string) bool { return strings.HasSuffix(s, "(envgate)") })
}

// symlinksUnder maps each device that symlinks under devDir resolve to onto the links,
// sorted: those in devDir/serial/by-id and by-path, in devDir itself (Raspberry Pi's
// serial0) and one directory down (a udev rule's SYMLINK+="edge/rs485-a"). It skips
// the directories that name every device by number (char, block) and /dev/fd.
func symlinksUnder(devDir string) map[string][]string {
	out := map[string][]string{}
	add := func(link string) {
		if real, err := filepath.EvalSymlinks(link); err == nil {
			out[real] = append(out[real], link)
		}
	}
	scan := func(dir string, depth int) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.Type()&os.ModeSymlink != 0:
				add(p)
			case e.IsDir() && depth == 0:
				switch e.Name() {
				case "char", "block", "fd", "pts", "shm", "disk", "mapper", "serial":
					continue
				}
				sub, err := os.ReadDir(p)
				if err != nil {
					continue
				}
				for _, s := range sub {
					if s.Type()&os.ModeSymlink != 0 {
						add(filepath.Join(p, s.Name()))
					}
				}
			}
		}
	}
	scan(devDir, 0)
	for _, kind := range []string{"by-id", "by-path"} {
		scan(filepath.Join(devDir, "serial", kind), 1)
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

// writePorts prints one block per port.
func writePorts(w io.Writer, infos []portInfo) {
	for i, in := range infos {
		if i > 0 {
			fmt.Fprintln(w)
		}
		head := []string{in.Device}
		if in.USB {
			head = append(head, "USB "+cmp.Or(in.VIDPID, "?:?"))
			if p := strings.TrimSpace(in.Manufacturer + " " + in.Product); p != "" {
				head = append(head, p)
			}
			if in.Serial != "" {
				head = append(head, "serial "+in.Serial)
			} else {
				head = append(head, "no serial number")
			}
		} else {
			head = append(head, "on-board or virtual port")
		}
		fmt.Fprintln(w, strings.Join(head, "  "))
		for _, l := range in.ByID {
			fmt.Fprintf(w, "    by-id    %s\n", l)
		}
		for _, l := range in.ByPath {
			fmt.Fprintf(w, "    by-path  %s\n", l)
		}
		for _, l := range in.Other {
			fmt.Fprintf(w, "    link     %s\n", l)
		}
		fmt.Fprintf(w, "    use      %s\n", in.Use)
		fmt.Fprintf(w, "             (%s)\n", in.Why)
		if in.NoAccess != "" {
			fmt.Fprintf(w, "    access   %s\n", in.NoAccess)
		}
		if in.Held != "" {
			fmt.Fprintf(w, "    in use   %s\n", in.Held)
		}
	}
}

// stableName returns the name `envgate ports` recommends for the serial device at
// path, for config snippets; path itself when it is already a link or has no better
// name.
func stableName(path string) string {
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink != 0 {
		return path
	}
	details, _ := listPorts()
	for _, in := range describePorts(details, "/dev") {
		if in.Device == path {
			return in.Use
		}
	}
	return path
}
