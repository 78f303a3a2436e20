package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/status"
)

// tailIdle is how long `envgate tail` waits for a line (a reading or the gateway's
// heartbeat, every status.DefaultHeartbeat) before it calls the link dead.
const tailIdle = 3 * status.DefaultHeartbeat

// cmdTail prints the readings a running gateway admits, as they arrive, one per line,
// read from its /api/readings stream.
func cmdTail(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file of the gateway: tail the one listening on its gateway.listen")
	listen := fs.String("listen", "", "HTTP address of the gateway (overrides -c; default "+config.DefaultListen+")")
	device := fs.String("device", "", "only these devices (comma-separated names)")
	site := fs.String("site", "", "only these sites (comma-separated names)")
	quantity := fs.String("quantity", "", "only these quantities (comma-separated names, e.g. la,pm25)")
	count := fs.Int("n", 0, "stop after this many readings (0: until Ctrl-C)")
	useTLS := fs.Bool("https", false, "speak HTTPS (set by -c when the gateway's web_config_file configures TLS)")
	caFile := fs.String("ca", "", "PEM file of the CA (or self-signed certificate) to trust for HTTPS, besides the system's")
	user := fs.String("user", "", "basic-auth user of the gateway's web_config_file; the password comes from $ENVGATE_PASSWORD or is asked for")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "envgate tail: unexpected argument %q; filter with --device, --site, --quantity\n", fs.Arg(0))
		return 2
	}
	addr, ok := daemonAddr("tail", *path, *listen, useTLS, stderr)
	if !ok {
		return 1
	}
	for _, q := range status.SplitList(*quantity) {
		if err := reading.CheckQuantity(q); err != nil {
			fmt.Fprintf(stderr, "envgate tail: --quantity: %v\n", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	f := status.Filter{Devices: status.SplitList(*device), Sites: status.SplitList(*site), Quantities: status.SplitList(*quantity)}
	conn := tailConn{addr: dialAddr(addr), user: *user}
	if *useTLS || *caFile != "" {
		tlsCfg, err := tailTLS(*caFile)
		if err != nil {
			fmt.Fprintf(stderr, "envgate tail: --ca: %v\n", err)
			return 2
		}
		conn.tls = tlsCfg
	}
	if *user != "" {
		password, err := tailPassword(stderr)
		if err != nil {
			fmt.Fprintf(stderr, "envgate tail: %v\n", err)
			return 2
		}
		conn.password = password
	}
	err := tail(ctx, conn, f, *count, tailIdle, stdout, stderr)
	switch {
	case err == nil, ctx.Err() != nil:
		return 0
	default:
		fmt.Fprintf(stderr, "envgate tail: %v\n", err)
		return 1
	}
}

// dialAddr returns the address to connect to for a listen address: a wildcard host
// ("", 0.0.0.0, ::) is reached on loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// streamQuery returns the query of /api/readings for f.
func streamQuery(f status.Filter) string {
	q := url.Values{}
	if len(f.Devices) > 0 {
		q.Set("device", strings.Join(f.Devices, ","))
	}
	if len(f.Sites) > 0 {
		q.Set("site", strings.Join(f.Sites, ","))
	}
	if len(f.Quantities) > 0 {
		q.Set("quantity", strings.Join(f.Quantities, ","))
	}
	return q.Encode()
}

// tailConn is how envgate tail reaches a gateway: its address, HTTPS if tls is set, and
// the basic-auth user of its web_config_file, if any.
type tailConn struct {
	addr           string
	tls            *tls.Config
	user, password string
}

// tailTLS returns the TLS settings of tail: the system's roots, and the certificates
// of caFile if given.
func tailTLS(caFile string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := config.ReadFile(caFile, config.MaxPEMFile)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// tailPassword returns $ENVGATE_PASSWORD, or a line read from the terminal (without
// echo) or standard input.
func tailPassword(stderr io.Writer) (string, error) {
	if p := os.Getenv("ENVGATE_PASSWORD"); p != "" {
		return p, nil
	}
	if restore, err := noEcho(os.Stdin); err == nil {
		fmt.Fprint(stderr, "password: ")
		defer func() { restore(); fmt.Fprintln(stderr) }()
	}
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if p := strings.TrimRight(line, "\r\n"); p != "" {
		return p, nil
	}
	return "", errors.New("--user needs a password: set ENVGATE_PASSWORD or type it")
}

// tail connects to the gateway and prints the readings that pass f until ctx is done,
// count readings are printed (count > 0), or the stream ends or falls silent for idle;
// then it returns why (nil for count).
func tail(ctx context.Context, c tailConn, f status.Filter, count int, idle time.Duration, stdout, stderr io.Writer) error {
	addr := c.addr
	scheme := "http"
	if c.tls != nil {
		scheme = "https"
	}
	u := scheme + "://" + addr + "/api/readings"
	if q := streamQuery(f); q != "" {
		u += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("gateway address %q: %w", addr, err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:       c.tls,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}}
	resp, err := client.Do(req)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no gateway answers at %s: is envgate running there? (start it with `envgate run -c FILE`; "+
			"give its address with --listen ADDR or its config with -c FILE)", addr)
	case err != nil:
		return fmt.Errorf("cannot reach the gateway at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		msg := strings.TrimSpace(string(body))
		switch resp.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("the server at %s has no reading stream (/api/readings): is it an envgate of this version?", addr)
		case http.StatusUnauthorized:
			if c.user == "" {
				return fmt.Errorf("the gateway at %s asks for a password (gateway.web_config_file): give --user NAME and ENVGATE_PASSWORD", addr)
			}
			return fmt.Errorf("the gateway at %s refused user name or password of %q", addr, c.user)
		case http.StatusServiceUnavailable:
			return fmt.Errorf("the gateway at %s refused the stream: %s", addr, msg)
		}
		return fmt.Errorf("the gateway at %s answered %s: %s", addr, resp.Status, msg)
	}
	fmt.Fprintf(stderr, "envgate tail: streaming readings from %s (Ctrl-C stops)\n", addr)
	// A stream silent for idle is a dead link: closing the body ends the read.
	var silent atomic.Bool
	timer := time.AfterFunc(idle, func() { silent.Store(true); resp.Body.Close() })
	defer timer.Stop()
	n, err := printStream(resp.Body, stdout, stderr, count, func() { timer.Reset(idle) })
	switch {
	case count > 0 && n >= count:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case silent.Load():
		return fmt.Errorf("nothing from the gateway at %s for %s: the link is down or the gateway hangs", addr, idle)
	case err != nil:
		return fmt.Errorf("reading the stream from %s: %w", addr, err)
	}
	return fmt.Errorf("the gateway at %s closed the stream: it is stopping", addr)
}

// printStream prints the readings of the /api/readings stream r to stdout, one per
// line, and a note on stderr for each count of dropped readings and each malformed
// line (which it skips, naming its line number), until r ends or count readings are
// printed (count > 0). It calls alive after every line. It returns the readings
// printed and the read error, nil at the end of r.
func printStream(r io.Reader, stdout, stderr io.Writer, count int, alive func()) (int, error) {
	br := bufio.NewReaderSize(r, status.MaxLine+2)
	printed := 0
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Too long to be a stream line: skip to its end.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == nil {
				fmt.Fprintf(stderr, "envgate tail: stream line %d: longer than %d bytes; skipped\n", lineNo, status.MaxLine)
				alive()
				continue
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(line) > 0 {
					fmt.Fprintf(stderr, "envgate tail: stream line %d: cut off by the end of the stream; skipped\n", lineNo)
				}
				return printed, nil
			}
			return printed, err
		}
		alive()
		l, derr := status.DecodeLine(line)
		switch {
		case derr != nil:
			fmt.Fprintf(stderr, "envgate tail: stream line %d: %v; skipped\n", lineNo, derr)
		case l.Dropped > 0:
			fmt.Fprintf(stderr, "envgate tail: %d readings dropped: this terminal read slower than they arrived "+
				"(filter with --device, --site or --quantity)\n", l.Dropped)
		case l.Reading != nil:
			fmt.Fprintln(stdout, formatReading(l.Reading))
			printed++
			if count > 0 && printed >= count {
				return printed, nil
			}
		}
	}
}

// formatReading is one line of `envgate tail`: local measurement time to the
// millisecond, site/device, quantity, value and unit, and the quality unless good.
//
//	2026-12-07T18:00:00.500+08:00 canal-demo/noise-1 la 52.1 dB(A)
func formatReading(r *status.LineReading) string {
	s := fmt.Sprintf("%s %s/%s %s %s %s", r.Time.Local().Format("2006-01-02T15:04:05.000Z07:00"), r.Site, r.Device,
		r.Quantity, strconv.FormatFloat(r.Value, 'f', -1, 64), r.Unit)
	if r.Quality != "" && r.Quality != "good" {
		s += " (" + r.Quality + ")"
	}
	return s
}

// daemonAddr is the address of the running gateway a client subcommand (tail, maint)
// talks to: --listen if given, else gateway.listen of the config at path (if any),
// else the default. A config with web TLS sets *useTLS. A config that does not load
// is reported on stderr, named by the subcommand, and gives ok false.
func daemonAddr(cmd, path, listen string, useTLS *bool, stderr io.Writer) (addr string, ok bool) {
	addr = config.DefaultListen
	if path != "" {
		cfg, err := config.Load(path)
		if err != nil {
			fmt.Fprintf(stderr, "envgate %s: config %s:\n", cmd, path)
			for _, line := range problemLines(err) {
				fmt.Fprintf(stderr, "  %s\n", line)
			}
			return "", false
		}
		addr = cfg.Gateway.Listen
		*useTLS = *useTLS || cfg.WebTLS()
	}
	if listen != "" {
		addr = listen
	}
	return addr, true
}
