package main

import (
	"bufio"
	"bytes"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
)

// The standard's example (HJ 212-2017 Appendix A; docs/standards.md §4.3).
const (
	hjExampleSegment = "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
	hjExamplePacket  = "##0101" + hjExampleSegment + "1C80"
)

func TestHJ212Tool(t *testing.T) {
	bin := buildBinary(t)
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"hj212"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}

	t.Run("decode", func(t *testing.T) {
		out, errs, code := run("", "decode", hjExamplePacket)
		if code != 0 || !strings.Contains(out, "1C80 in the packet, 1C80 computed: ok") || !strings.Contains(out, "A=1 (answer requested)") ||
			!strings.Contains(out, "RtdInterval = 30") {
			t.Errorf("decode example: exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("decode corrupt", func(t *testing.T) {
		bad := strings.Replace(hjExamplePacket, "1C80", "1C08", 1)
		out, errs, code := run(hjExamplePacket+"\r\n"+bad+"\r\n", "decode")
		if code == 0 || !strings.Contains(out, "CRC 1C08 in the packet, 1C80 computed over the data segment") ||
			!strings.Contains(errs, "1 of 2 packets bad") {
			t.Errorf("decode corrupt: exit %d\n%s%s", code, out, errs)
		}
		out, _, code = run("", "decode", strings.Replace(hjExamplePacket, "0101", "0100", 1))
		if code == 0 || !strings.Contains(out, "length field 0100, data segment of 101 bytes") {
			t.Errorf("decode bad length: exit %d\n%s", code, out)
		}
	})
	t.Run("decode factors", func(t *testing.T) {
		seg := "QN=20260315221500123;ST=23;CN=2011;PW=123456;MN=33010500A0010001F0000002;Flag=5;CP=&&DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=T&&"
		b, _ := hj212.Frame([]byte(seg))
		out, errs, code := run(string(b), "decode")
		if code != 0 || !strings.Contains(out, "factor LA (A-weighted level, envgate la): Rtd=47.3, Flag=T (above the measuring range)") ||
			!strings.Contains(out, "computed: ok") {
			t.Errorf("decode factors: exit %d\n%s%s", code, out, errs)
		}
	})
	t.Run("encode", func(t *testing.T) {
		out, errs, code := run("", "encode", hjExampleSegment)
		if code != 0 || out != hjExamplePacket+"\r\n" {
			t.Errorf("encode example = %q (exit %d, %s), want %q", out, code, errs, hjExamplePacket+"\r\n")
		}
		_, errs, code = run("", "encode", "--check", "QN=1;ST=32;CN=1062;PW=1;MN=x;CP=&&&&")
		if code == 0 || !strings.Contains(errs, `field QN="1": want 17 digits`) {
			t.Errorf("encode --check of a bad QN: exit %d, %s", code, errs)
		}
		if out, _, code = run("", "encode", "anything at all"); code != 0 || !strings.HasPrefix(out, "##0015anything at all") {
			t.Errorf("encode without --check = %q, exit %d", out, code)
		}
	})
	t.Run("serve", func(t *testing.T) {
		cmd := exec.Command(bin, "hj212", "serve", "--listen", "127.0.0.1:0")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() {
			t.Fatal("serve printed nothing")
		}
		_, addr, ok := strings.Cut(lines.Text(), "listening on ")
		if !ok {
			t.Fatalf("serve: first line %q", lines.Text())
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("garbage\r\n" + strings.Replace(hjExamplePacket, "1C80", "1C81", 1) + "\r\n" + hjExamplePacket + "\r\n"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		ans, err := bufio.NewReader(c).ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		p, err := hj212.Decode(ans)
		if err != nil || p.CN != "9014" || p.QN != "20160801085857223" || p.ST != "91" || p.Flag != 4 {
			t.Fatalf("serve answered %q: %+v, %v; want CN 9014 with the same QN", ans, p, err)
		}
		c.Close()
		cmd.Process.Signal(syscall.SIGINT)
		var all []string
		for lines.Scan() {
			all = append(all, lines.Text())
		}
		cmd.Wait()
		text := strings.Join(all, "\n")
		if !strings.Contains(text, "summary: 1 connections, 1 good packets, 2 bad, 1 answered") ||
			!strings.Contains(text, "CRC 1C81 in the packet, 1C80 computed") {
			t.Errorf("serve output:\n%s", text)
		}
	})
}
