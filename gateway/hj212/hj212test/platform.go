// Package hj212test is a stand-in for an HJ 212-2017 platform, for tests: a TCP
// listener on loopback that checks every packet it receives with a parser and a CRC
// of its own (written from docs/standards.md §4, independently of gateway/hj212, so
// that a misreading of the standard in the codec does not pass its own test), records
// them, answers data uploads with CN 9014 as told (at once, late, never, or dropping
// the connection), and sends commands.
package hj212test

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Packet is one packet the platform received, field by field.
type Packet struct {
	QN, ST, CN, PW, MN string
	Flag               int
	PNUM, PNO          int // 0 when not split
	CP                 string
	Raw                string
}

// Ack reports Flag bit A; Split bit D.
func (p Packet) Ack() bool   { return p.Flag&1 != 0 }
func (p Packet) Split() bool { return p.Flag&2 != 0 }

// Behaviour is how the platform answers data uploads.
type Behaviour struct {
	Delay     time.Duration // answer each packet this long after it came
	Never     bool          // never answer
	DropAfter int           // close the connection on receiving this many packets of a connection (0: never)
	Reject    bool          // close every connection as soon as it is accepted
}

// Platform is the stand-in. Its methods are safe for concurrent use.
type Platform struct {
	t  testing.TB
	ln net.Listener

	mu      sync.Mutex
	b       Behaviour
	packets []Packet
	conns   int
	parts   map[string]int // QN and MN of a split record → the last PNO received, on any connection
	cur     net.Conn
	wmu     sync.Mutex
	changed chan struct{} // closed and replaced when a packet or a connection comes
	wg      sync.WaitGroup
}

// New starts a platform on a free loopback port; it stops when the test ends.
func New(t testing.TB) *Platform { return NewOn(t, "127.0.0.1:0") }

// NewOn starts a platform on addr (a platform that comes back on its old port).
func NewOn(t testing.TB, addr string) *Platform {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &Platform{t: t, ln: ln, changed: make(chan struct{}), parts: map[string]int{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the platform's host:port.
func (p *Platform) Addr() string { return p.ln.Addr().String() }

// Set changes how the platform answers from now on.
func (p *Platform) Set(b Behaviour) {
	p.mu.Lock()
	p.b = b
	p.mu.Unlock()
}

// Close stops the listener and closes the connection.
func (p *Platform) Close() {
	p.ln.Close()
	p.mu.Lock()
	if p.cur != nil {
		p.cur.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// DropConnection closes the current connection, as a platform restart would.
func (p *Platform) DropConnection() {
	p.mu.Lock()
	if p.cur != nil {
		p.cur.Close()
	}
	p.mu.Unlock()
}

// Connections returns how many connections the platform accepted.
func (p *Platform) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// Packets returns a copy of every packet received so far.
func (p *Platform) Packets() []Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Packet(nil), p.packets...)
}

// Wait waits up to timeout for cond to hold over the packets received, and fails the
// test if it does not.
func (p *Platform) Wait(timeout time.Duration, what string, cond func([]Packet) bool) []Packet {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		ch := p.changed
		pk := append([]Packet(nil), p.packets...)
		p.mu.Unlock()
		if cond(pk) {
			return pk
		}
		select {
		case <-ch:
		case <-deadline:
			p.t.Fatalf("platform: %s: not within %v (%d packets received)", what, timeout, len(pk))
			return nil
		}
	}
}

// WaitConnections waits up to timeout for the platform to have accepted n connections
// (or more), and fails the test if it does not.
func (p *Platform) WaitConnections(n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		ch, got := p.changed, p.conns
		p.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			p.t.Fatalf("platform: %d connections, not %d within %v", got, n, timeout)
			return
		}
	}
}

// Send writes segment as a packet, framed with the platform's own CRC, on the current
// connection. crcOK false spoils the CRC.
func (p *Platform) Send(segment string, crcOK bool) error {
	p.mu.Lock()
	c := p.cur
	p.mu.Unlock()
	if c == nil {
		return fmt.Errorf("no connection")
	}
	frame := Frame(segment)
	if !crcOK {
		frame = frame[:len(frame)-6] + "0000\r\n"
		if Frame(segment) == frame {
			frame = frame[:len(frame)-6] + "0001\r\n"
		}
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := c.Write([]byte(frame))
	return err
}

func (p *Platform) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		reject := p.b.Reject
		if !reject {
			if p.cur != nil {
				p.cur.Close() // one connection at a time, as a platform keeps one per MN
			}
			p.conns++
			p.cur = c
			close(p.changed)
			p.changed = make(chan struct{})
		}
		p.mu.Unlock()
		if reject {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Platform) serve(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 8192), 8192)
	sc.Split(splitCRLF)
	var got int
	for sc.Scan() {
		line := sc.Text()
		pk, err := Parse(line)
		if err != nil {
			p.t.Errorf("platform: bad packet %q: %v", line, err)
			continue
		}
		got++
		p.mu.Lock()
		if pk.Split() {
			// The next part; or a re-send: of the last part (unanswered), or of the
			// record from its first part. A record retried on a new connection goes
			// on from the part that was not answered.
			k := pk.QN + "|" + pk.MN
			if last := p.parts[k]; pk.PNO != last+1 && pk.PNO != last && pk.PNO != 1 {
				p.t.Errorf("platform: packet QN %s PNO %d after PNO %d", pk.QN, pk.PNO, last)
			}
			p.parts[k] = pk.PNO
		}
		p.packets = append(p.packets, pk)
		close(p.changed)
		p.changed = make(chan struct{})
		b := p.b
		p.mu.Unlock()
		if b.DropAfter > 0 && got >= b.DropAfter {
			return
		}
		if !pk.Ack() || b.Never || pk.ST == "91" {
			continue
		}
		answer := fmt.Sprintf("QN=%s;ST=91;CN=9014;PW=%s;MN=%s;Flag=4;CP=&&&&", pk.QN, pk.PW, pk.MN)
		send := func() {
			p.wmu.Lock()
			c.Write([]byte(Frame(answer)))
			p.wmu.Unlock()
		}
		if b.Delay > 0 { // late, but reading on: each answer its own delay
			p.wg.Add(1)
			time.AfterFunc(b.Delay, func() { defer p.wg.Done(); send() })
			continue
		}
		send()
	}
}

func splitCRLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := strings.Index(string(data), "\r\n"); i >= 0 {
		return i + 2, data[:i+2], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// crcTable is the HJ 212 register step for each value of the byte it takes in: the
// register is shifted right by 8, XORed with the byte, then shifted right 8 times,
// XORing 0xA001 when a 1 falls out. The eight shifts depend only on the low byte,
// which is (byte), so they are tabulated once.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		r := uint16(i)
		for j := 0; j < 8; j++ {
			if r&1 == 1 {
				r = r>>1 ^ 0xA001
			} else {
				r >>= 1
			}
		}
		t[i] = r
	}
	return
}()

// CRC is the checksum of docs/standards.md §4.3, table-driven. The register after
// "reg>>8 XOR b" is hi:lo with hi = 0 and lo = (reg>>8)^b, and the 8 shifts of a
// 16-bit value whose high byte is 0 are the table entry of its low byte.
func CRC(s string) uint16 {
	reg := uint16(0xFFFF)
	for i := 0; i < len(s); i++ {
		reg = crcTable[byte(reg>>8)^s[i]]
	}
	return reg
}

// Frame wraps a segment: ##, length, segment, CRC, CR LF.
func Frame(segment string) string {
	return fmt.Sprintf("##%04d%s%04X\r\n", len(segment), segment, CRC(segment))
}

var (
	frameRE = regexp.MustCompile(`^##([0-9]{4})(.*)([0-9A-F]{4})\r\n$`)
	headRE  = regexp.MustCompile(`^QN=([0-9]{17});ST=([0-9]{2});CN=([0-9]{4});PW=([^;=&]*);MN=([^;=&]+);Flag=([0-9]{1,3});(?:PNUM=([0-9]+);PNO=([0-9]+);)?CP=&&(.*)&&$`)
)

// Parse checks one packet, CR LF included, against the layout of docs/standards.md
// §4.1–4.2 as envgate sends it (every field present, in order; upper-case CRC; version
// 2017; PNUM and PNO exactly when Flag bit D is set) and returns its fields.
func Parse(frame string) (Packet, error) {
	m := frameRE.FindStringSubmatch(frame)
	if m == nil {
		return Packet{}, fmt.Errorf("not ##dddd…XXXX CR LF")
	}
	seg := m[2]
	if n, _ := strconv.Atoi(m[1]); n != len(seg) {
		return Packet{}, fmt.Errorf("length field %s, segment of %d", m[1], len(seg))
	}
	if n := len(seg); n > 1024 {
		return Packet{}, fmt.Errorf("segment of %d characters, over 1024", n)
	}
	if want := fmt.Sprintf("%04X", CRC(seg)); want != m[3] {
		return Packet{}, fmt.Errorf("CRC %s, want %s", m[3], want)
	}
	h := headRE.FindStringSubmatch(seg)
	if h == nil {
		return Packet{}, fmt.Errorf("segment %q: fields not QN;ST;CN;PW;MN;Flag;[PNUM;PNO;]CP=&&…&&", seg)
	}
	p := Packet{QN: h[1], ST: h[2], CN: h[3], PW: h[4], MN: h[5], CP: h[9], Raw: frame}
	p.Flag, _ = strconv.Atoi(h[6])
	if p.Flag > 255 || p.Flag>>2 != 1 {
		return p, fmt.Errorf("Flag %d: want version bits 000001", p.Flag)
	}
	if p.Split() != (h[7] != "") {
		return p, fmt.Errorf("Flag %d and PNUM %q disagree", p.Flag, h[7])
	}
	if p.Split() {
		p.PNUM, _ = strconv.Atoi(h[7])
		p.PNO, _ = strconv.Atoi(h[8])
		if p.PNO < 1 || p.PNO > p.PNUM {
			return p, fmt.Errorf("PNO %d of PNUM %d", p.PNO, p.PNUM)
		}
	}
	if strings.Contains(p.CP, "&&") {
		return p, fmt.Errorf("&& inside CP")
	}
	if _, err := time.Parse("20060102150405", p.QN[:14]); err != nil {
		return p, fmt.Errorf("QN %s: not a time", p.QN)
	}
	return p, nil
}

// Value is one value of a reassembled record.
type Value struct {
	MN, CN, DataTime, Field string // Field: code-suffix, such as LA-Rtd or Leq-Data
	Value                   string
}

// Records reassembles the data uploads among pks (split parts joined by QN; a re-sent
// packet counted once) and returns every value, plus the number of duplicates: a
// (MN, CN, DataTime, field) sent again in another packet. A field sent twice with
// different values is reported in conflicts.
func Records(pks []Packet) (values map[Value]bool, duplicates int, conflicts []string) {
	values = map[Value]bool{}
	type part struct {
		qn  string
		pno int
	}
	seen := map[part]bool{}
	first := map[[4]string]string{}
	for _, p := range pks {
		if p.ST == "91" || p.CN[0] != '2' {
			continue
		}
		k := part{p.QN + p.MN, p.PNO}
		if seen[k] {
			continue // a re-send of the same packet
		}
		seen[k] = true
		var dt string
		fields := map[string]string{}
		for _, g := range strings.Split(p.CP, ";") {
			for _, f := range strings.Split(g, ",") {
				name, v, _ := strings.Cut(f, "=")
				if name == "DataTime" {
					dt = v
				} else if strings.Contains(name, "-") {
					fields[name] = v
				}
			}
		}
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			id := [4]string{p.MN, p.CN, dt, n}
			if old, ok := first[id]; ok {
				duplicates++
				if old != fields[n] {
					conflicts = append(conflicts, fmt.Sprintf("%v: %s then %s", id, old, fields[n]))
				}
				continue
			}
			first[id] = fields[n]
			values[Value{p.MN, p.CN, dt, n, fields[n]}] = true
		}
	}
	return values, duplicates, conflicts
}
