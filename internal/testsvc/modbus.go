package testsvc

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Install hints for the independent Modbus peers; scripts/install-deps.sh installs both.
const (
	PymodbusInstallHint = "apt-get install python3-pymodbus python3-serial python3-serial-asyncio (Debian bookworm: pymodbus 3.0), or scripts/install-deps.sh"
	SocatInstallHint    = "apt-get install socat, or scripts/install-deps.sh"
)

const (
	// systemPython is Debian's interpreter, the one python3-pymodbus is installed for;
	// a pyenv or venv python3 earlier on PATH would not see it.
	systemPython = "/usr/bin/python3"

	ptyReadyTimeout   = 5 * time.Second
	ptyStopTimeout    = 5 * time.Second
	slaveReadyTimeout = 20 * time.Second // importing pymodbus takes about 0.3 s; CI runners are slower
	slaveStopTimeout  = 5 * time.Second
	slaveReplyTimeout = 5 * time.Second
)

//go:embed testdata/modbus_slave.py
var modbusSlaveScript []byte

// Pty is a pair of connected pseudo-terminals made by socat: bytes written to A come
// out of B and the other way round, as on a serial cable. A and B are symlinks in a
// private temporary directory; both ends are raw with echo off, so a test can open
// them with os.OpenFile and needs no termios calls. A pty has no modem lines and
// ignores baud rate and parity. Its methods are for the test goroutine only.
type Pty struct {
	A, B string // symlinks to the two ends, e.g. /tmp/envgate-pty-123/a
	Log  string // socat's log (-d -d): the /dev/pts names and the exit

	proc *process
}

// PtyPair starts `socat -d -d pty,raw,echo=0,link=<dir>/a pty,raw,echo=0,link=<dir>/b`,
// waits until both links exist and socat relays data, and stops socat in t.Cleanup.
// When the test fails, socat's log is printed. A missing socat skips the test, or fails
// it under CI=true. Unlike the servers in this package it does not skip under -short:
// socat starts in milliseconds, and driver unit tests use it.
//
// The links live in a fresh directory under os.TempDir(), not t.TempDir(): socat
// splits its addresses at ',' and ':', which test names may contain.
func PtyPair(t testing.TB) *Pty {
	t.Helper()
	bin := Binary(t, "socat", SocatInstallHint)
	dir, err := os.MkdirTemp("", "envgate-pty-")
	if err != nil {
		t.Fatalf("pty pair: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if strings.ContainsAny(dir, ",:!") {
		t.Fatalf("pty pair: temporary directory %q contains a character socat treats as a separator; set TMPDIR", dir)
	}
	p := &Pty{
		A:   filepath.Join(dir, "a"),
		B:   filepath.Join(dir, "b"),
		Log: filepath.Join(dir, "socat.log"),
	}
	p.proc = &process{
		name: "socat for " + p.A, bin: bin, log: p.Log,
		args:  []string{"-d", "-d", "pty,raw,echo=0,link=" + p.A, "pty,raw,echo=0,link=" + p.B},
		ready: p.ready, readyTimeout: ptyReadyTimeout,
		stopWaits: []time.Duration{ptyStopTimeout}, logTail: logTailLines,
	}
	p.proc.run(t, "socat", p.Close)
	return p
}

// start starts socat and waits until both links exist and its log says it relays data.
func (p *Pty) start(t testing.TB) {
	t.Helper()
	p.proc.start(t)
}

// ready reports whether both links resolve and socat's log, from offset from on, says
// it has entered its data transfer loop.
func (p *Pty) ready(from int64) error {
	for _, l := range []string{p.A, p.B} {
		if _, err := os.Stat(l); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err
	}
	if int64(len(b)) < from || !strings.Contains(string(b[from:]), "starting data transfer loop") {
		return errors.New("no pty pair yet")
	}
	return nil
}

// Close stops socat: both ptys hang up (reads on open ends fail with EIO) and the links
// disappear, as when a USB serial adapter is unplugged. Closing a closed pair does
// nothing.
func (p *Pty) Close(t testing.TB) {
	t.Helper()
	if !p.proc.running() {
		return
	}
	p.proc.stop(t)
	// socat removes its links on SIGTERM, not when it is killed.
	for _, l := range []string{p.A, p.B} {
		if err := os.Remove(l); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("remove pty link: %v", err)
		}
	}
}

// Restart starts socat again with the same link paths (after Close, or stopping it
// first if it runs), as when the adapter is plugged back in. The links point to new
// /dev/pts devices: whoever had the old ones open must reopen the paths.
func (p *Pty) Restart(t testing.TB) {
	t.Helper()
	p.Close(t)
	p.start(t)
}

// SlaveOptions says what StartModbusSlave serves.
type SlaveOptions struct {
	Serial string // pty path (usually Pty.A) to serve Modbus RTU on; empty: serve over TCP
	Baud   int    // serial only; default 9600 (a pty ignores it)
	Parity string // serial only: "N" (default), "E" or "O" (a pty ignores it)

	// TCP serves Modbus TCP (MBAP framing) on 127.0.0.1 and a port the kernel picks;
	// it is what an empty Serial means anyway.
	TCP bool
	// RTUOverTCP serves RTU framing (slave id, PDU, CRC; no MBAP header) over TCP, like a
	// transparent serial-to-Ethernet converter: pymodbus's ModbusTcpServer with
	// ModbusRtuFramer.
	RTUOverTCP bool

	// Slaves maps slave id to its registers. Other ids get no answer at all (a dead
	// slave); over serial, id 0 (broadcast) is refused.
	Slaves map[uint8]SlaveData
}

// SlaveData is what one slave serves. Each table answers exactly the addresses listed
// (protocol addresses, 0-based): a read or write touching any other address gets
// exception 02 (illegal data address). A nil or empty table answers nothing.
type SlaveData struct {
	Holding  map[uint16]uint16
	Input    map[uint16]uint16
	Coils    map[uint16]bool
	Discrete map[uint16]bool
}

// Slave is a Modbus slave served by pymodbus 3.0 in a Python process (an independent
// implementation to test our driver against), started by StartModbusSlave. Its methods
// are for the test goroutine only.
type Slave struct {
	Addr string // "127.0.0.1:port" over TCP (Modbus TCP or RTU over TCP); empty on serial
	Log  string // the Python process's log: pymodbus at DEBUG level, one line per frame

	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string   // stdout lines after "ready"; closed when stdout ends
	exited  chan struct{} // closed once cmd has been waited for
	logFile *os.File
}

// slaveConfig is the JSON read by testdata/modbus_slave.py.
type slaveConfig struct {
	Serial string                `json:"serial,omitempty"`
	Baud   int                   `json:"baud,omitempty"`
	Parity string                `json:"parity,omitempty"`
	Framer string                `json:"framer"` // "socket" (Modbus TCP) or "rtu"
	Slaves map[uint8]slaveTables `json:"slaves"`
}

type slaveTables struct {
	Holding  map[uint16]uint16 `json:"holding,omitempty"`
	Input    map[uint16]uint16 `json:"input,omitempty"`
	Coils    map[uint16]bool   `json:"coils,omitempty"`
	Discrete map[uint16]bool   `json:"discrete,omitempty"`
}

// StartModbusSlave runs testdata/modbus_slave.py under /usr/bin/python3 with opt as
// JSON, waits until it serves (the serial port is open, or the TCP port listens; Addr
// is set), and stops it in t.Cleanup. When the test fails, the tail of its log is
// printed. On serial it reopens the port by itself after the pty disappears and comes
// back (Pty.Close, Pty.Restart), within about 0.1 s.
//
// It skips under -short unless CI=true. A missing python3, pymodbus 3.0 or
// pyserial-asyncio skips the test, or fails it under CI=true.
func StartModbusSlave(t testing.TB, opt SlaveOptions) *Slave {
	t.Helper()
	if testing.Short() && !inCI() {
		t.Skip("integration test with a real Modbus slave (pymodbus); skipped with -short")
	}
	cfg := slaveConfigFor(t, opt)
	if _, err := os.Stat(systemPython); err != nil {
		SkipOrFail(t, "%s: %v; install it: %s", systemPython, err, PymodbusInstallHint)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "modbus_slave.py")
	if err := os.WriteFile(script, modbusSlaveScript, 0o644); err != nil {
		t.Fatalf("write modbus slave script: %v", err)
	}
	conf := filepath.Join(dir, "config.json")
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("modbus slave config: %v", err)
	}
	if err := os.WriteFile(conf, raw, 0o644); err != nil {
		t.Fatalf("write modbus slave config: %v", err)
	}
	s := &Slave{Log: filepath.Join(dir, "modbus_slave.log")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("modbus slave log %s (last %d lines):\n%s", s.Log, logTailLines, tail(s.Log, logTailLines))
		}
	})
	t.Cleanup(func() { s.Stop(t) })

	f, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("open modbus slave log: %v", err)
	}
	cmd := exec.Command(systemPython, script, conf)
	cmd.Stderr = f
	// PYTHONPATH and friends from a pyenv or venv must not leak into Debian's python.
	cmd.Env = append(os.Environ(), "PYTHONNOUSERSITE=1", "PYTHONPATH=", "PYTHONHOME=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		f.Close()
		t.Fatalf("modbus slave stdin: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		f.Close()
		t.Fatalf("modbus slave stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", systemPython, err)
	}
	lines, exited := make(chan string, 16), make(chan struct{})
	go func() {
		// Stdout carries the replies; copy it into the log too, to show them in order.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintf(f, "stdout: %s\n", sc.Text())
			lines <- sc.Text()
		}
		close(lines)
		_ = cmd.Wait() // after the last read from stdout, as os/exec requires
		close(exited)
	}()
	s.cmd, s.stdin, s.lines, s.exited, s.logFile = cmd, stdin, lines, exited, f

	first, err := s.readLine(slaveReadyTimeout)
	switch {
	case err != nil:
		s.kill()
		t.Fatalf("modbus slave: %v; log %s:\n%s", err, s.Log, tail(s.Log, logTailLines))
	case strings.HasPrefix(first, "missing "):
		s.kill()
		SkipOrFail(t, "modbus slave: %s; install it: %s", strings.TrimPrefix(first, "missing "), PymodbusInstallHint)
	case !strings.HasPrefix(first, "ready "):
		s.kill()
		t.Fatalf("modbus slave did not start: %s; log %s:\n%s", first, s.Log, tail(s.Log, logTailLines))
	}
	if opt.Serial == "" {
		s.Addr = strings.TrimPrefix(first, "ready ")
	}
	return s
}

// slaveConfigFor checks opt and turns it into the script's configuration.
func slaveConfigFor(t testing.TB, opt SlaveOptions) slaveConfig {
	t.Helper()
	var problems []string
	cfg := slaveConfig{Framer: "socket", Slaves: make(map[uint8]slaveTables, len(opt.Slaves))}
	if opt.Serial != "" {
		if opt.TCP || opt.RTUOverTCP {
			problems = append(problems, "Serial is set together with TCP or RTUOverTCP")
		}
		cfg.Serial, cfg.Baud, cfg.Parity, cfg.Framer = opt.Serial, opt.Baud, opt.Parity, "rtu"
		if cfg.Baud == 0 {
			cfg.Baud = 9600
		}
		if cfg.Baud < 0 {
			problems = append(problems, fmt.Sprintf("Baud %d is negative", opt.Baud))
		}
		switch cfg.Parity {
		case "":
			cfg.Parity = "N"
		case "N", "E", "O":
		default:
			problems = append(problems, fmt.Sprintf("Parity %q: want N, E or O", opt.Parity))
		}
		if _, ok := opt.Slaves[0]; ok {
			// Modbus over Serial Line V1.02 §2.2: address 0 is broadcast, never answered.
			problems = append(problems, "slave id 0 is the broadcast address on a serial line")
		}
	} else {
		if opt.Baud != 0 || opt.Parity != "" {
			problems = append(problems, "Baud and Parity apply to Serial only")
		}
		if opt.RTUOverTCP {
			cfg.Framer = "rtu"
		}
	}
	if len(problems) > 0 {
		t.Fatalf("StartModbusSlave: %s", strings.Join(problems, "; "))
	}
	for id, d := range opt.Slaves {
		cfg.Slaves[id] = slaveTables(d)
	}
	return cfg
}

// readLine returns the next stdout line of the script, or an error when it exits or
// says nothing within timeout.
func (s *Slave) readLine(timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case l, ok := <-s.lines:
		if !ok {
			<-s.exited
			return "", fmt.Errorf("exited: %v", s.cmd.ProcessState)
		}
		return l, nil
	case <-timer.C:
		return "", fmt.Errorf("no answer within %v", timeout)
	}
}

// kill ends a script that failed to start, so that Stop in t.Cleanup has nothing left
// to report.
func (s *Slave) kill() {
	_ = s.cmd.Process.Kill() // it may have exited already
	<-s.exited
	s.logFile.Close()
	s.cmd, s.stdin, s.exited, s.logFile = nil, nil, nil, nil
}

// SetRegister sets a holding (holding=true) or input register of a running slave and
// returns once the slave has applied it. An address that was not served before is
// served from now on. Any error fails the test.
func (s *Slave) SetRegister(t testing.TB, slave uint8, holding bool, addr, value uint16) {
	t.Helper()
	if s.cmd == nil {
		t.Fatalf("modbus slave: SetRegister after Stop")
	}
	table := "i"
	if holding {
		table = "h"
	}
	cmd := fmt.Sprintf("set %d %s %d %d", slave, table, addr, value)
	if _, err := io.WriteString(s.stdin, cmd+"\n"); err != nil {
		t.Fatalf("modbus slave %q: %v", cmd, err)
	}
	reply, err := s.readLine(slaveReplyTimeout)
	if err != nil {
		t.Fatalf("modbus slave %q: %v; log %s:\n%s", cmd, err, s.Log, tail(s.Log, logTailLines))
	}
	if reply != "ok" {
		t.Fatalf("modbus slave %q: %s", cmd, reply)
	}
}

// Stop stops the slave: it closes the script's stdin, which makes it close its port and
// exit, and kills it if it has not exited within 5 s. Stopping a stopped slave does
// nothing.
func (s *Slave) Stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	defer func() {
		s.logFile.Close()
		s.cmd, s.stdin, s.exited, s.logFile = nil, nil, nil, nil
	}()
	select {
	case <-s.exited:
		t.Errorf("modbus slave had exited before Stop: %v", s.cmd.ProcessState)
		return
	default:
	}
	_ = s.stdin.Close() // EOF is the stop command; an error means it is already gone
	timer := time.NewTimer(slaveStopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		if !s.cmd.ProcessState.Success() {
			t.Errorf("modbus slave: %v", s.cmd.ProcessState)
		}
		return
	case <-timer.C:
	}
	t.Errorf("modbus slave did not exit within %v of Stop; killing it", slaveStopTimeout)
	_ = s.cmd.Process.Kill()
	<-s.exited
}
