package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/internal/testsvc"
)

// webPKI is a CA of the test's own (testsvc.TestCA) and a server certificate it signed
// for 127.0.0.1 and localhost, copied into a directory of the test's choosing as
// server.crt and server.key, so that a web config can name them relatively.
type webPKI struct {
	pool              *x509.CertPool // trusts the CA
	caFile            string         // the CA's certificate (PEM), for clients given a file
	certFile, keyFile string         // the server's certificate and key (PEM)
}

// newWebPKI writes the server's certificate and key into dir.
func newWebPKI(t *testing.T, dir string) webPKI {
	t.Helper()
	ca := testsvc.NewTestCA(t)
	cert, key := ca.Issue(t, "envgate", true)
	p := webPKI{pool: ca.Pool, caFile: ca.CertFile, certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{cert, p.certFile}, {key, p.keyFile}} {
		b, err := os.ReadFile(c[0])
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, c[1], string(b))
	}
	return p
}

// webUser and webPassword are the one user of the tests' web configs.
const webUser, webPassword = "prometheus", "correct horse battery staple"

// webConfigYAML returns a web config with TLS from cert and key (paths as written)
// when cert is set, and basic auth for webUser.
func webConfigYAML(t *testing.T, cert, key string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(webPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if cert != "" {
		fmt.Fprintf(&b, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n", cert, key)
	}
	fmt.Fprintf(&b, "basic_auth_users:\n  %s: %s\n", webUser, hash)
	return b.String()
}

// httpsClient trusts only pool; local, if set, is the address it dials from.
func httpsClient(pool *x509.CertPool, local net.IP) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true,
	}}
}

// getAs returns the status and body of GET url by c, with basic auth when user is set;
// status 0 and the error when there was no answer.
func getAs(c *http.Client, url, user, password string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// serveWeb serves the gateway's handler with the limits lim and the web config file
// webConfig ("" for none) on a loopback port, as run does, and returns its address.
func serveWeb(t *testing.T, webConfig string, lim httpLimits) (addr string, l *limitListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, l := newHTTPServer(metrics.New().Handler(func() error { return nil }), ln, lim)
	done := make(chan error, 1)
	go func() { done <- serveHTTP(srv, l, webConfig, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serveHTTP = %v, want http.ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), l
}

// loadWebConfig writes a config naming webConfig (as written) into dir and loads it.
func loadWebConfig(t *testing.T, dir, webConfig string) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(dir, "envgate.yaml")
	writeFile(t, path, fmt.Sprintf(`gateway: {id: box, site: canal, state_dir: %s, listen: "127.0.0.1:0", web_config_file: %q}
devices:
  - {name: noise-1, interval: 1s, sim: {kind: noise}}
`, filepath.Join(dir, "state"), webConfig))
	return config.Load(path)
}

// TestWebTLSAndBasicAuth is issue 12, item 5: with a web config of TLS and basic auth,
// every path the server answers (/metrics, /healthz, the status page at /, and a path
// no handler knows) answers 401 without credentials, with a wrong password and for an
// unknown user, and 200 with the right ones, over HTTPS with the test's own CA; plain
// HTTP to the TLS port gets no page. The web config file and its certificate paths
// are relative: to the config file's directory, and to the web config's.
func TestWebTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "web"), 0o750); err != nil {
		t.Fatal(err)
	}
	pki := newWebPKI(t, filepath.Join(dir, "web"))
	writeFile(t, filepath.Join(dir, "web", "web.yml"), webConfigYAML(t, "server.crt", "server.key"))
	cfg, err := loadWebConfig(t, dir, "web/web.yml")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if want := filepath.Join(dir, "web", "web.yml"); cfg.Gateway.WebConfigFile != want || !cfg.WebTLS() {
		t.Fatalf("web_config_file = %q, TLS %v; want %q, true", cfg.Gateway.WebConfigFile, cfg.WebTLS(), want)
	}
	addr, _ := serveWeb(t, cfg.Gateway.WebConfigFile, defaultHTTPLimits())
	c := httpsClient(pki.pool, nil)
	for _, path := range []string{"/metrics", "/healthz", "/", "/api/status"} {
		url := "https://" + addr + path
		for _, who := range []struct{ user, password string }{{"", ""}, {webUser, "wrong"}, {"nobody", webPassword}, {webUser, ""}} {
			code, body, err := getAs(c, url, who.user, who.password)
			if err != nil || code != http.StatusUnauthorized {
				t.Errorf("GET %s as %q/%q = %d, %v; want 401", url, who.user, who.password, code, err)
			}
			if strings.Contains(body, "envgate_") || strings.Contains(body, "ok\n") {
				t.Errorf("GET %s as %q/%q shows the page:\n%s", url, who.user, who.password, body)
			}
		}
		code, body, err := getAs(c, url, webUser, webPassword)
		want := http.StatusOK
		if path == "/api/status" {
			want = http.StatusNotFound // no handler here; past the auth
		}
		if err != nil || code != want {
			t.Errorf("GET %s with the password = %d, %v; want %d", url, code, err, want)
		}
		if path == "/metrics" && !strings.Contains(body, "envgate_") {
			t.Errorf("GET %s: no envgate metrics:\n%s", url, body)
		}
	}

	// The server's certificate is checked: a client without the CA refuses it.
	if _, _, err := getAs(httpsClient(x509.NewCertPool(), nil), "https://"+addr+"/healthz", webUser, webPassword); err == nil {
		t.Error("a client that does not trust the test CA got an answer")
	}
	// Plain HTTP to the TLS port gets no page, with or without the password.
	code, body, err := getAs(httpClient, "http://"+addr+"/metrics", webUser, webPassword)
	if err == nil && (code == http.StatusOK || strings.Contains(body, "envgate_")) {
		t.Errorf("plain HTTP to the TLS port = %d:\n%s", code, body)
	}
	// HTTP/2 is not offered: the connection limits follow HTTP/1.1 connections.
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool}, ForceAttemptHTTP2: true}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/healthz", nil)
	req.SetBasicAuth(webUser, webPassword)
	if resp, err := h2.Do(req); err != nil {
		t.Errorf("GET /healthz offering HTTP/2: %v", err)
	} else {
		resp.Body.Close()
		if resp.ProtoMajor != 1 {
			t.Errorf("GET /healthz offering HTTP/2 was answered in %s, want HTTP/1.1", resp.Proto)
		}
	}
}

// TestWebBasicAuthWithoutTLS: a web config with users and no tls_server_config serves
// plain HTTP with basic auth, as the toolkit does.
func TestWebBasicAuthWithoutTLS(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.yml"), webConfigYAML(t, "", ""))
	cfg, err := loadWebConfig(t, dir, "web.yml")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if cfg.WebTLS() {
		t.Error("WebTLS() = true for a web config without tls_server_config")
	}
	addr, _ := serveWeb(t, cfg.Gateway.WebConfigFile, defaultHTTPLimits())
	if code, _, err := getAs(httpClient, "http://"+addr+"/metrics", webUser, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password = %d, %v; want 401", code, err)
	}
	if code, _, err := getAs(httpClient, "http://"+addr+"/metrics", webUser, webPassword); code != http.StatusOK {
		t.Errorf("right password = %d, %v; want 200", code, err)
	}
}

// TestWebNoConfigServesPlainHTTP: without gateway.web_config_file the server speaks
// plain HTTP and asks for no password, as before issue 12.
func TestWebNoConfigServesPlainHTTP(t *testing.T) {
	addr, _ := serveWeb(t, "", defaultHTTPLimits())
	for _, path := range []string{"/metrics", "/healthz", "/"} {
		if code, _, err := getAs(httpClient, "http://"+addr+path, "", ""); code != http.StatusOK {
			t.Errorf("GET %s = %d, %v; want 200", path, code, err)
		}
	}
}

// silentTLS is a client that connects to addr from ip and never sends its TLS hello,
// dialling again whenever the server closes the connection, until stop is closed.
func silentTLS(addr string, ip net.IP, stop <-chan struct{}) {
	redial(addr, ip, stop, func(c net.Conn) {
		// Half a ClientHello record header, then nothing: the handshake never ends.
		c.Write([]byte{0x16, 0x03})
		closed := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(closed) }()
		select {
		case <-stop:
		case <-closed:
		}
	})
}

// TestWebSlowTLSHandshakeCannotStarveHealthz is the slow-header test of issue 10 for
// TLS (issue 12): clients that connect and never finish their TLS handshake hold every
// slot, with a read-header timeout of a minute; at the cap the server closes the one
// that has waited longest, handshake included, so /healthz over HTTPS answers within
// seconds.
func TestWebSlowTLSHandshakeCannotStarveHealthz(t *testing.T) {
	const attackers, maxConns = 32, 8
	dir := t.TempDir()
	pki := newWebPKI(t, dir)
	writeFile(t, filepath.Join(dir, "web.yml"), webConfigYAML(t, pki.certFile, pki.keyFile))
	lim := httpLimits{ReadHeader: time.Minute, Read: time.Minute, Write: time.Minute, Idle: time.Minute, MaxConns: maxConns}
	addr, l := serveWeb(t, filepath.Join(dir, "web.yml"), lim)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	for i := range attackers {
		wg.Go(func() { silentTLS(addr, net.IPv4(127, 0, 3, byte(1+i)), stop) })
	}
	if !waitFor(t, 10*time.Second, func() bool { return l.open() >= maxConns }) {
		t.Fatalf("the attackers hold %d slots, want %d", l.open(), maxConns)
	}
	c := httpsClient(pki.pool, nil)
	for i := range 3 {
		start := time.Now()
		if code, _, err := getAs(c, "https://"+addr+"/healthz", webUser, webPassword); code != http.StatusOK {
			t.Fatalf("/healthz %d under %d silent TLS clients = %d, %v", i, attackers, code, err)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("/healthz %d took %v", i, took)
		}
	}
}

// TestWebSlowTLSHandshakeMakesRoomForItsOwnAddress: under TLS the listener still
// knows each connection's remote address (net/http hands it a *tls.Conn, not the
// connection it accepted). An address holding its share of slots with handshakes
// that never finish gets a new connection by one of them being closed, instead of
// being refused.
func TestWebSlowTLSHandshakeMakesRoomForItsOwnAddress(t *testing.T) {
	const maxConns = 8 // 4 per address
	dir := t.TempDir()
	pki := newWebPKI(t, dir)
	writeFile(t, filepath.Join(dir, "web.yml"), webConfigYAML(t, pki.certFile, pki.keyFile))
	lim := httpLimits{ReadHeader: time.Minute, Read: time.Minute, Write: time.Minute, Idle: time.Minute, MaxConns: maxConns}
	addr, l := serveWeb(t, filepath.Join(dir, "web.yml"), lim)
	ip := net.IPv4(127, 0, 4, 1)
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
	for range maxConnsPerIP(maxConns) {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.Write([]byte{0x16, 0x03})
	}
	if !waitFor(t, 10*time.Second, func() bool { return l.open() >= maxConnsPerIP(maxConns) }) {
		t.Fatalf("the silent clients hold %d slots, want %d", l.open(), maxConnsPerIP(maxConns))
	}
	// Once they have waited minPending, one is closed for a new connection of theirs.
	var code int
	var err error
	if !waitFor(t, 10*time.Second, func() bool {
		code, _, err = getAs(httpsClient(pki.pool, ip), "https://"+addr+"/healthz", webUser, webPassword)
		return code == http.StatusOK
	}) {
		t.Errorf("/healthz from %v, which holds its share in silent TLS clients = %d, %v; want 200", ip, code, err)
	}
}

// TestWebTLSHandshakeTimeout: a client that never finishes its handshake is closed
// within the read-header timeout, below the cap too.
func TestWebTLSHandshakeTimeout(t *testing.T) {
	dir := t.TempDir()
	pki := newWebPKI(t, dir)
	writeFile(t, filepath.Join(dir, "web.yml"), webConfigYAML(t, pki.certFile, pki.keyFile))
	lim := httpLimits{ReadHeader: 500 * time.Millisecond, Read: time.Minute, Write: time.Minute, Idle: time.Minute, MaxConns: 8}
	addr, _ := serveWeb(t, filepath.Join(dir, "web.yml"), lim)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte{0x16, 0x03})
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = bufio.NewReader(c).ReadByte()
	for err == nil {
		_, err = c.Read(make([]byte, 512))
	}
	if took := time.Since(start); !errors.Is(err, io.EOF) && !isReset(err) || took > 10*time.Second {
		t.Errorf("silent TLS client: read = %v after %v, want closed by the server after about %v", err, took, lim.ReadHeader)
	}
}

// TestWebConfigCheckedAsRunChecksIt: envgate check refuses a bad web config with the
// message envgate run refuses it with, naming gateway.web_config_file, the file and
// the key: a password that is not a bcrypt hash, a certificate file that does not
// exist or is a named pipe (which the toolkit alone would wait on forever), an unknown
// key, and a web config that is missing, a directory or too large.
func TestWebConfigCheckedAsRunChecksIt(t *testing.T) {
	dir := t.TempDir()
	pki := newWebPKI(t, dir)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	good := webConfigYAML(t, pki.certFile, pki.keyFile)
	hash := good[strings.Index(good, "$2a$"):strings.LastIndex(good, "\n")]
	web := filepath.Join(dir, "web.yml")
	cases := []struct {
		name, web string // the web config file's content; "" for none
		path      string // gateway.web_config_file; default web
		want      string // the problem after "gateway.web_config_file (line 1): "
	}{
		{name: "bad bcrypt hash", web: strings.Replace(good, hash, "hunter2", 1),
			want: web + `: basic_auth_users.prometheus: not a bcrypt hash (crypto/bcrypt: hashedSecret too short to be a bcrypted password); make one with "envgate hash-password" or "htpasswd -nBC 10 prometheus"`},
		{name: "missing cert file", web: strings.Replace(good, pki.certFile, "nope.crt", 1),
			want: web + ": tls_server_config.cert_file: open " + filepath.Join(dir, "nope.crt") + ": no such file or directory"},
		{name: "cert file a FIFO", web: strings.Replace(good, pki.certFile, fifo, 1),
			want: web + ": tls_server_config.cert_file: " + fifo + " is a named pipe (FIFO), not a regular file"},
		{name: "key of another certificate", web: strings.Replace(good, pki.keyFile, newWebPKI(t, t.TempDir()).keyFile, 1),
			want: web + ": failed to load X509KeyPair: tls: private key does not match public key"},
		{name: "unknown key", web: strings.Replace(good, "tls_server_config:", "tls_server_confg:", 1),
			want: web + `: yaml: unmarshal errors: line 1: unknown key "tls_server_confg"`},
		{name: "missing web config", path: filepath.Join(dir, "nope.yml"),
			want: "cannot read web config: open " + filepath.Join(dir, "nope.yml") + ": no such file or directory"},
		{name: "web config a FIFO", path: fifo,
			want: "cannot read web config: " + fifo + " is a named pipe (FIFO), not a regular file"},
		{name: "web config too large", web: good + "# " + strings.Repeat("x", int(config.MaxWebConfigFile)) + "\n",
			want: "cannot read web config: " + web + " is larger than 1MiB"},
	}
	for i, tc := range cases {
		if tc.web != "" {
			writeFile(t, web, tc.web)
		}
		if tc.path == "" {
			tc.path = web
		}
		path := filepath.Join(dir, fmt.Sprintf("case%d.yaml", i))
		writeFile(t, path, fmt.Sprintf("gateway: {id: box, site: canal, state_dir: %s, listen: \"127.0.0.1:0\", web_config_file: %s}\ndevices:\n  - {name: noise-1, interval: 1s, sim: {kind: noise}}\n",
			filepath.Join(dir, "state"), tc.path))
		want := "gateway.web_config_file (line 1): " + tc.want
		done := make(chan struct{})
		go func() {
			defer close(done)
			code, out, _ := cli("check", "-c", path)
			if code != 1 || !strings.HasPrefix(out, path+": "+want+"\n") {
				t.Errorf("%s: envgate check = %d, %q; want 1, %q", tc.name, code, out, path+": "+want)
				if code == 0 {
					return // run would start a gateway that runs until stopped
				}
			}
			if strings.Contains(out, "hunter2") || strings.Contains(out, "$2a$") {
				t.Errorf("%s: envgate check shows a password or hash: %q", tc.name, out)
			}
			code, _, errOut := cli("run", "-c", path)
			if code != 1 || !strings.Contains(errOut, "  "+want+"\n") {
				t.Errorf("%s: envgate run = %d, %q; want 1 and the same problem", tc.name, code, errOut)
			}
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s: still blocked after 30s", tc.name)
			if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
			<-done
		}
	}
}

// TestWebRunBinaryOverTLS runs the envgate binary with a web config of TLS and basic
// auth, as an operator does: /metrics, /healthz and / refuse a scrape without the
// password or with a wrong one and answer it with the right one, over HTTPS only, and
// the log names the https URL.
func TestWebRunBinaryOverTLS(t *testing.T) {
	skipSubprocess(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	pki := newWebPKI(t, dir)
	writeFile(t, filepath.Join(dir, "web.yml"), webConfigYAML(t, "server.crt", "server.key"))
	addr := loopback(t)
	cfg := filepath.Join(dir, "envgate.yaml")
	writeFile(t, cfg, strings.Replace(runConfig(filepath.Join(dir, "state"), addr, 5*time.Second, ""),
		"  listen: "+addr+"\n", "  listen: "+addr+"\n  web_config_file: web.yml\n", 1))
	// web.yml and the certificate paths in it are relative to the config's directory,
	// not the process's working directory (the package's).
	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfg)
	c := httpsClient(pki.pool, nil)
	var code int
	var body string
	var err error
	if !waitFor(t, 30*time.Second, func() bool {
		code, body, err = getAs(c, "https://"+addr+"/metrics", webUser, webPassword)
		return p.exited() || code == http.StatusOK && strings.Contains(body, `envgate_device_up{device="noise-1"`)
	}) || p.exited() {
		t.Fatalf("no metrics over https within 30s: %d, %v\n%s", code, err, body)
	}
	for _, path := range []string{"/metrics", "/healthz", "/"} {
		url := "https://" + addr + path
		if code, _, err := getAs(c, url, "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a password = %d, %v; want 401", url, code, err)
		}
		if code, _, err := getAs(c, url, webUser, "wrong"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password = %d, %v; want 401", url, code, err)
		}
		if code, _, err := getAs(c, url, webUser, webPassword); code != http.StatusOK {
			t.Errorf("GET %s with the password = %d, %v; want 200", url, code, err)
		}
	}
	if code, body := get("http://" + addr + "/metrics"); code == http.StatusOK || strings.Contains(body, "envgate_") {
		t.Errorf("plain HTTP = %d:\n%s", code, body)
	}
	// envgate tail reads the stream over TLS with the password: https from the config,
	// the CA given, the password from the environment; without it, or with a wrong
	// one, it says so.
	t.Setenv("ENVGATE_PASSWORD", webPassword)
	if code, out, errOut := cli("tail", "-c", cfg, "--ca", pki.caFile, "--user", webUser, "-n", "2"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("envgate tail over TLS = %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Setenv("ENVGATE_PASSWORD", "wrong")
	if code, _, errOut := cli("tail", "-c", cfg, "--ca", pki.caFile, "--user", webUser, "-n", "1"); code != 1 || !strings.Contains(errOut, "user name or password") {
		t.Errorf("envgate tail with a wrong password = %d, stderr %q; want 1 and the reason", code, errOut)
	}
	if code, _, errOut := cli("tail", "-c", cfg, "--user", webUser, "-n", "1"); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("envgate tail without the CA = %d, stderr %q; want 1 and a certificate error", code, errOut)
	}
	if code, took := p.stop(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after %v", code, took)
	}
	if want := "metrics=https://" + addr + "/metrics"; !strings.Contains(p.stderr.String(), want) {
		t.Errorf("the log does not say %s:\n%s", want, p.stderr.String())
	}
}

// TestHashPassword: envgate hash-password prints a bcrypt hash of the first line of
// stdin that the web config accepts and that matches the password.
func TestHashPassword(t *testing.T) {
	var out, errOut strings.Builder
	if code := cmdHashPassword([]string{"-cost", "4"}, strings.NewReader(webPassword+"\nnext line\n"), &out, &errOut); code != 0 {
		t.Fatalf("hash-password = %d, %s", code, errOut.String())
	}
	hash := strings.TrimSuffix(out.String(), "\n")
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(webPassword)); err != nil {
		t.Errorf("hash %q does not match the password: %v", hash, err)
	}
	for _, tc := range []struct {
		args  []string
		stdin string
		want  int
	}{{nil, "", 1}, {nil, "\n", 1}, {[]string{"-cost", "3"}, "x\n", 2}, {[]string{"extra"}, "x\n", 2}} {
		if code := cmdHashPassword(tc.args, strings.NewReader(tc.stdin), io.Discard, io.Discard); code != tc.want {
			t.Errorf("hash-password %q < %q = %d, want %d", tc.args, tc.stdin, code, tc.want)
		}
	}
}
