package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/hj212"
)

const hj212Usage = `usage:
  envgate hj212 decode [PACKET]      check and explain packets (the argument, or stdin, one per line)
  envgate hj212 encode [--check] [SEGMENT]
                                     frame data segments (the argument, or stdin, one per line)
  envgate hj212 serve [--listen ADDR] [--no-answer] [--log FILE]
                                     play the platform: print each packet, answer uploads with CN 9014
`

// cmdHJ212 is the installer's HJ 212-2017 tool (docs/hj212.md, "The envgate hj212 tool").
func cmdHJ212(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, hj212Usage)
		return 2
	}
	switch args[0] {
	case "decode":
		return cmdHJ212Decode(args[1:], stdin, stdout, stderr)
	case "encode":
		return cmdHJ212Encode(args[1:], stdin, stdout, stderr)
	case "serve":
		return cmdHJ212Serve(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, hj212Usage)
		return 0
	}
	fmt.Fprintf(stderr, "envgate hj212: unknown command %q\n\n%s", args[0], hj212Usage)
	return 2
}

// inputLines returns the one argument, or stdin's non-empty lines (without their CR LF).
func inputLines(fs *flag.FlagSet, stdin io.Reader) ([]string, error) {
	if fs.NArg() > 1 {
		return nil, fmt.Errorf("one argument at most (quote it), or lines on stdin; got %d", fs.NArg())
	}
	if fs.NArg() == 1 {
		return []string{fs.Arg(0)}, nil
	}
	var lines []string
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r\n"); strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

func cmdHJ212Decode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hj212 decode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	zone := fs.String("tz", config.DefaultHJ212Timezone, "time zone of QN and DataTime")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	loc, err := config.LoadLocation(*zone)
	if err != nil {
		fmt.Fprintf(stderr, "envgate hj212 decode: --tz: %v\n", err)
		return 2
	}
	lines, err := inputLines(fs, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "envgate hj212 decode: %v\n", err)
		return 2
	}
	bad := 0
	for i, l := range lines {
		if len(lines) > 1 {
			fmt.Fprintf(stdout, "packet %d:\n", i+1)
		}
		if !explainPacket(stdout, []byte(l), loc) {
			bad++
		}
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "envgate hj212 decode: %d of %d packets bad\n", bad, len(lines))
		return 1
	}
	return 0
}

// explainPacket prints every check and field of one packet and reports whether it is
// good. A packet whose length or CRC fails still has its fields shown (unverified).
func explainPacket(w io.Writer, frame []byte, loc *time.Location) bool {
	frame = bytes.TrimRight(frame, "\r\n")
	if i := bytes.Index(frame, []byte("##")); i > 0 {
		fmt.Fprintf(w, "  skipped %d bytes before ##: %q\n", i, frame[:i])
		frame = frame[i:]
	}
	good := true
	_, err := hj212.Unframe(frame)
	var le *hj212.LengthError
	var ce *hj212.CRCError
	switch {
	case err == nil:
		fmt.Fprintf(w, "  length   %s, data segment of %d bytes: ok\n", frame[2:6], len(frame)-10)
		fmt.Fprintf(w, "  CRC      %s in the packet, %04X computed: ok\n", frame[len(frame)-4:], hj212.CRC(frame[6:len(frame)-4]))
	case errors.As(err, &le):
		fmt.Fprintf(w, "  length   BAD: %v\n", err)
		good = false
	case errors.As(err, &ce):
		fmt.Fprintf(w, "  length   %s: ok\n", frame[2:6])
		fmt.Fprintf(w, "  CRC      BAD: %v\n", err)
		good = false
	default:
		fmt.Fprintf(w, "  frame    BAD: %v\n", err)
		return false
	}
	seg := string(frame[6 : len(frame)-4])
	if !good {
		fmt.Fprintln(w, "  fields as received (unverified):")
	}
	p, err := hj212.ParseSegment(seg)
	if err != nil {
		fmt.Fprintf(w, "  fields   BAD: %v\n", err)
		fmt.Fprintf(w, "  segment  %s\n", seg)
		return false
	}
	if p.QN != "" {
		qt, _ := hj212.ParseQN(p.QN, loc)
		fmt.Fprintf(w, "  QN       %s (%s)\n", p.QN, qt.Format("2006-01-02 15:04:05.000 MST"))
	} else {
		fmt.Fprintln(w, "  QN       (none)")
	}
	fmt.Fprintf(w, "  ST       %s%s\n", p.ST, paren(stNames[p.ST]))
	fmt.Fprintf(w, "  CN       %s%s\n", p.CN, paren(cnNames[p.CN]))
	fmt.Fprintf(w, "  PW       %s\n", p.PW)
	fmt.Fprintf(w, "  MN       %s\n", p.MN)
	if p.Flag == hj212.NoFlag {
		fmt.Fprintln(w, "  Flag     (none: HJ/T 212-2005)")
	} else {
		fmt.Fprintf(w, "  Flag     %d = version %d (%s), D=%d (%s), A=%d (%s)\n", p.Flag, p.Version(), versionName(p.Version()),
			p.Flag>>1&1, map[bool]string{true: "split: PNUM, PNO follow", false: "not split"}[p.Split()],
			p.Flag&1, map[bool]string{true: "answer requested", false: "no answer"}[p.Ack()])
	}
	if p.Split() {
		fmt.Fprintf(w, "  PNUM     %d\n  PNO      %d\n", p.PNUM, p.PNO)
	}
	fmt.Fprintf(w, "  CP       %s\n", p.CP)
	groups, err := hj212.ParseCP(p.CP)
	if err != nil {
		fmt.Fprintf(w, "  CP       BAD: %v\n", err)
		return false
	}
	factors := map[string][]hj212.Field{}
	var order []string
	for _, g := range groups {
		for _, f := range g {
			code, suffix, ok := hj212.SplitFactorField(f.Name)
			if !ok {
				extra := ""
				if f.Name == "DataTime" || f.Name == "SystemTime" || f.Name == "BeginTime" || f.Name == "EndTime" {
					if t, err := hj212.ParseTime(f.Value, loc); err == nil {
						extra = paren(t.Format("2006-01-02 15:04:05 MST"))
					} else {
						extra = " (BAD: want YYYYMMDDhhmmss)"
						good = false
					}
				}
				fmt.Fprintf(w, "    %s = %s%s\n", f.Name, f.Value, extra)
				continue
			}
			if _, seen := factors[code]; !seen {
				order = append(order, code)
			}
			factors[code] = append(factors[code], hj212.Field{Name: suffix, Value: f.Value})
		}
	}
	for _, code := range order {
		var parts []string
		for _, v := range factors[code] {
			s := v.Name + "=" + v.Value
			if v.Name == "Flag" {
				s += paren(flagNames[v.Value])
			}
			parts = append(parts, s)
		}
		fmt.Fprintf(w, "    factor %s%s: %s\n", code, paren(factorName(code)), strings.Join(parts, ", "))
	}
	if good {
		fmt.Fprintln(w, "  ok")
	}
	return good
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func versionName(v int) string {
	switch v {
	case 0:
		return "HJ/T 212-2005"
	case 1:
		return "HJ 212-2017"
	}
	return "unknown"
}

// factorName names a factor code by hj212.Factors.
func factorName(code string) string {
	var names []string
	for q, fi := range hj212.Factors {
		if fi.Code == code {
			names = append(names, q)
		}
	}
	if len(names) == 0 {
		return ""
	}
	for _, fi := range hj212.Factors {
		if fi.Code == code {
			if len(names) == 1 {
				return fi.Name + ", envgate " + names[0]
			}
			return fi.Name
		}
	}
	return ""
}

// stNames, cnNames and flagNames describe the codes of docs/standards.md §4.4–4.6.
var stNames = map[string]string{
	hj212.STSurfaceWater: "surface water quality", hj212.STAir: "ambient air quality",
	hj212.STAcoustic: "acoustic environment quality", hj212.STInteraction: "system interaction",
	"31": "air pollution source", "32": "surface water pollution source", "36": "noise source",
}

var cnNames = map[string]string{
	hj212.CNSetTimeout: "set answer timeout and retries", hj212.CNGetTime: "get / upload the site's time",
	hj212.CNSetTime: "set the site's time", hj212.CNTimeCalibration: "time-calibration request",
	hj212.CNGetRtdInterval: "get / upload the real-time interval", hj212.CNSetRtdInterval: "set the real-time data interval",
	hj212.CNGetMinInterval: "get / upload the minute interval", hj212.CNSetMinInterval: "set the minute interval",
	hj212.CNSetPassword: "set the password", hj212.CNRealtime: "real-time data", hj212.CNStopRealtime: "stop real-time data",
	hj212.CNStatus: "equipment running status", hj212.CNStopStatus: "stop running status", hj212.CNDaily: "daily data",
	hj212.CNRunTimeDaily: "running-time daily data", hj212.CNMinute: "minute data", hj212.CNHourly: "hourly data",
	hj212.CNPowerOn: "data-logger power-on time", hj212.CNRequestAnswer: "request answer (QnRtn)",
	hj212.CNExecResult: "execution result (ExeRtn)", hj212.CNNotifyAnswer: "notification answer",
	hj212.CNDataAnswer: "data answer",
}

var flagNames = map[string]string{
	hj212.DataNormal: "instrument normal", hj212.DataStopped: "instrument stopped", hj212.DataMaintenance: "maintenance",
	hj212.DataManual: "manually entered", hj212.DataFault: "instrument fault", hj212.DataCalibration: "calibration",
	hj212.DataOverRange: "above the measuring range", hj212.DataCommError: "instrument communication failure",
}

func cmdHJ212Encode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hj212 encode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "refuse a segment whose fields are malformed (default: frame the text as given)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	lines, err := inputLines(fs, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "envgate hj212 encode: %v\n", err)
		return 2
	}
	code := 0
	for _, seg := range lines {
		if *check {
			p, err := hj212.ParseSegment(seg)
			if err == nil {
				err = p.Check()
			}
			if err == nil && len(seg) > hj212.MaxSegment {
				err = fmt.Errorf("data segment of %d characters: the limit is %d", len(seg), hj212.MaxSegment)
			}
			if err != nil {
				fmt.Fprintf(stderr, "envgate hj212 encode: %.60q: %v\n", seg, err)
				code = 1
				continue
			}
		}
		b, err := hj212.Frame([]byte(seg))
		if err != nil {
			fmt.Fprintf(stderr, "envgate hj212 encode: %v\n", err)
			code = 1
			continue
		}
		stdout.Write(b)
	}
	return code
}

func cmdHJ212Serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hj212 serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9212", "TCP address to listen on (0.0.0.0:9212 for analyzers on the network)")
	noAnswer := fs.Bool("no-answer", false, "answer nothing (see how a device behaves without the platform's 9014)")
	logPath := fs.String("log", "", "also append every line to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "envgate hj212 serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	out := stdout
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "envgate hj212 serve: %v\n", err)
			return 1
		}
		defer f.Close()
		out = io.MultiWriter(stdout, f)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "envgate hj212 serve: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, func() { ln.Close() })

	var mu sync.Mutex // one line at a time
	printf := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, time.Now().Format("15:04:05.000 ")+format+"\n", a...)
	}
	var conns, good, bad, answered atomic.Uint64
	printf("listening on %s", ln.Addr())
	var wg sync.WaitGroup
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(stderr, "envgate hj212 serve: %v\n", err)
			return 1
		}
		conns.Add(1)
		wg.Go(func() {
			defer c.Close()
			stopConn := context.AfterFunc(ctx, func() { c.Close() })
			defer stopConn()
			peer := c.RemoteAddr().String()
			printf("%s connected", peer)
			r := hj212.NewReader(c)
			for {
				p, frame, err := r.Next()
				var fe *hj212.FrameError
				switch {
				case errors.As(err, &fe):
					bad.Add(1)
					printf("%s BAD %v", peer, fe)
					continue
				case err != nil:
					printf("%s closed (%v)", peer, err)
					return
				}
				good.Add(1)
				printf("%s %s", peer, packetLine(p, len(frame)))
				if p.Ack() && !*noAnswer && !strings.HasPrefix(p.CN, "9") {
					b, err := hj212.DataAnswer(p)
					if err == nil {
						c.SetWriteDeadline(time.Now().Add(10 * time.Second))
						if _, err = c.Write(b); err == nil {
							answered.Add(1)
							printf("%s answered CN=9014 QN=%s", peer, p.QN)
						}
					}
					if err != nil {
						printf("%s answer failed: %v", peer, err)
					}
				}
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(out, "summary: %d connections, %d good packets, %d bad, %d answered\n", conns.Load(), good.Load(), bad.Load(), answered.Load())
	return 0
}

// packetLine is one packet on one line, for serve's log.
func packetLine(p hj212.Packet, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ok QN=%s ST=%s CN=%s%s MN=%s", p.QN, p.ST, p.CN, paren(cnNames[p.CN]), p.MN)
	if p.Flag != hj212.NoFlag {
		fmt.Fprintf(&b, " Flag=%d", p.Flag)
	}
	if p.Split() {
		fmt.Fprintf(&b, " PNO=%d/%d", p.PNO, p.PNUM)
	}
	fmt.Fprintf(&b, " CP=%s (%d bytes)", p.CP, n)
	return b.String()
}
