package testsvc

import (
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MosquittoInstallHint tells how to install the broker (Debian bookworm: mosquitto 2.0.11,
// which also brings mosquitto_passwd).
const MosquittoInstallHint = "apt-get install mosquitto, or scripts/install-deps.sh"

const (
	mosquittoReadyTimeout = 10 * time.Second // it starts in milliseconds; CI runners are slower
	mosquittoStopTimeout  = 10 * time.Second // after SIGTERM, before SIGKILL
	mosquittoLogTail      = 60               // log_type all writes a line per packet
	publishTimeout        = 10 * time.Second

	// publishUser is the account Publish logs in with when MosquittoOptions.Users is set.
	publishUser = "testsvc-publish"
)

// publishSeq numbers the client ids of Publish's short-lived clients.
var publishSeq atomic.Int64

// MosquittoOptions says how StartMosquitto configures the broker. The zero value is a
// plain-TCP broker that accepts anonymous clients with mosquitto's default limits.
type MosquittoOptions struct {
	// TLS, when set, adds a second listener (TLSURL) serving TLS with a server
	// certificate from this CA, for 127.0.0.1 and localhost. The plain listener (URL)
	// stays, with the same users; Publish uses it.
	TLS *TestCA
	// RequireClientCert makes the TLS listener require a client certificate signed by
	// TLS (mTLS). It needs TLS.
	RequireClientCert bool
	// Users maps user name to password; when it is set, clients must log in on every
	// listener (allow_anonymous false). The passwords are hashed with mosquitto_passwd;
	// a missing mosquitto_passwd skips the test, or fails it under CI=true. Besides
	// these users the broker knows one for Publish, "testsvc-publish".
	Users map[string]string
	// MaxInflight is max_inflight_messages: how many outgoing QoS 1 and 2 messages the
	// broker has in flight (sent, not yet acknowledged) to one MQTT 3.1.1 client before
	// it holds back the rest; MQTT 5 clients set this with Receive Maximum instead.
	// 0 keeps mosquitto's default, 20. Mosquitto 2.0.11 keeps to it until the first
	// acknowledgement, then may go one over; see TestMosquittoMaxInflight.
	MaxInflight int
	// MaxQueued is max_queued_messages: how many QoS 1 and 2 messages the broker queues
	// for one client besides those in flight; for a persistent session while it is
	// offline, how many it keeps (tested: 3 of 6). It drops the newer ones. 0 keeps
	// mosquitto's default, 1000.
	MaxQueued int
	// Extra lines go into the configuration's global section as they are, e.g. a
	// plugin and its options.
	Extra []string
}

// Mosquitto is a mosquitto 2.x broker started by StartMosquitto for one test. It keeps
// sessions, subscriptions, queued and retained messages in a persistence file in Dir,
// written on Stop, so persistent sessions survive Stop and Start. Its methods are for
// the test goroutine only.
type Mosquitto struct {
	URL    string // plain MQTT, "tcp://127.0.0.1:port"
	TLSURL string // MQTT over TLS, "ssl://127.0.0.1:port"; empty without MosquittoOptions.TLS
	Dir    string // configuration, password file, persistence directory and log
	Log    string // path of mosquitto's log (log_type all: a line per packet)

	config   string // mosquitto.conf
	ports    []int  // the listeners' ports, for the readiness check
	password string // publishUser's password; empty without Users

	proc *process
}

// StartMosquitto starts mosquitto with a configuration made from opt, listening on free
// loopback ports with its files in t.TempDir(); it waits until every listener accepts
// connections and stops the broker in t.Cleanup. When the test fails, the tail of the
// broker's log is printed. Under -short it skips, unless CI=true; a missing mosquitto
// skips the test, or fails it under CI=true.
func StartMosquitto(t testing.TB, opt MosquittoOptions) *Mosquitto {
	t.Helper()
	if testing.Short() && !inCI() {
		t.Skip("integration test with a real Mosquitto broker; skipped with -short")
	}
	checkMosquittoOptions(t, opt)
	bin := sbinBinary(t, "mosquitto", MosquittoInstallHint)
	dir := t.TempDir()
	m := &Mosquitto{
		Dir:    dir,
		Log:    filepath.Join(dir, "mosquitto.log"),
		config: filepath.Join(dir, "mosquitto.conf"),
	}
	m.proc = &process{
		bin: bin, args: []string{"-c", m.config}, log: m.Log,
		ready: m.ready, readyTimeout: mosquittoReadyTimeout,
		stopWaits: []time.Duration{mosquittoStopTimeout}, checkExit: true, logTail: mosquittoLogTail,
	}
	c := mosquittoConf{
		root:        os.Geteuid() == 0,
		dataDir:     filepath.Join(dir, "data"),
		port:        freePortExcept(t, nil),
		maxInflight: opt.MaxInflight,
		maxQueued:   opt.MaxQueued,
		extra:       opt.Extra,
	}
	if err := os.Mkdir(c.dataDir, 0o700); err != nil {
		t.Fatalf("mosquitto persistence directory: %v", err)
	}
	m.URL = fmt.Sprintf("tcp://127.0.0.1:%d", c.port)
	m.ports = []int{c.port}
	if opt.TLS != nil {
		c.tlsPort = freePortExcept(t, m.ports)
		c.cafile = opt.TLS.CertFile
		c.certfile, c.keyfile = opt.TLS.Issue(t, "mosquitto", true)
		c.requireCert = opt.RequireClientCert
		m.TLSURL = fmt.Sprintf("ssl://127.0.0.1:%d", c.tlsPort)
		m.ports = append(m.ports, c.tlsPort)
	}
	if len(opt.Users) > 0 {
		m.password = rand.Text()
		c.passwordFile = filepath.Join(dir, "passwd")
		writePasswordFile(t, c.passwordFile, opt.Users, m.password)
	}
	if err := os.WriteFile(m.config, []byte(c.String()), 0o600); err != nil {
		t.Fatalf("write mosquitto config: %v", err)
	}
	// Cleanups run last-in first-out: stop the broker first, then show its log.
	m.proc.name = "mosquitto on " + m.URL
	m.proc.run(t, "mosquitto", m.Stop)
	return m
}

// checkMosquittoOptions fails the test on options that make no sense, listing all of them.
func checkMosquittoOptions(t testing.TB, opt MosquittoOptions) {
	t.Helper()
	var problems []string
	if opt.RequireClientCert && opt.TLS == nil {
		problems = append(problems, "RequireClientCert needs TLS")
	}
	if opt.MaxInflight < 0 {
		problems = append(problems, fmt.Sprintf("MaxInflight %d is negative", opt.MaxInflight))
	}
	if opt.MaxQueued < 0 {
		problems = append(problems, fmt.Sprintf("MaxQueued %d is negative", opt.MaxQueued))
	}
	if _, ok := opt.Users[publishUser]; ok {
		problems = append(problems, fmt.Sprintf("user %q is reserved for Publish", publishUser))
	}
	for u, p := range opt.Users {
		// The password file has a "user:password" line per user before hashing.
		if u == "" || strings.ContainsAny(u, ":\n") || strings.Contains(p, "\n") {
			problems = append(problems, fmt.Sprintf("user %q: a name must be non-empty without ':' or a newline, a password without a newline", u))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Fatalf("StartMosquitto: %s", strings.Join(problems, "; "))
	}
}

// sbinBinary is Binary for a daemon Debian installs in /usr/sbin, which is not on a
// non-root user's PATH.
func sbinBinary(t testing.TB, name, installHint string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return p
	}
	return Binary(t, name, installHint)
}

// freePortExcept returns a free loopback port that is not in taken.
func freePortExcept(t testing.TB, taken []int) int {
	t.Helper()
	for {
		if p := FreePort(t); !slices.Contains(taken, p) {
			return p
		}
	}
}

// writePasswordFile writes users and publishUser as "user:password" lines and has
// mosquitto_passwd -U hash them in place (PBKDF2-SHA512 in mosquitto 2.0).
func writePasswordFile(t testing.TB, path string, users map[string]string, publishPassword string) {
	t.Helper()
	bin := Binary(t, "mosquitto_passwd", MosquittoInstallHint)
	var b strings.Builder
	for _, u := range slices.Sorted(maps.Keys(users)) {
		fmt.Fprintf(&b, "%s:%s\n", u, users[u])
	}
	fmt.Fprintf(&b, "%s:%s\n", publishUser, publishPassword)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("write mosquitto password file: %v", err)
	}
	if out, err := exec.Command(bin, "-U", path).CombinedOutput(); err != nil {
		t.Fatalf("%s -U %s: %v: %s", bin, path, err, out)
	}
}

// mosquittoConf is what goes into mosquitto.conf.
type mosquittoConf struct {
	root         bool   // running as root: keep root instead of switching to user mosquitto
	dataDir      string // persistence_location
	port         int    // plain listener
	passwordFile string // empty: allow_anonymous true

	tlsPort                   int // 0: no TLS listener
	cafile, certfile, keyfile string
	requireCert               bool

	maxInflight, maxQueued int // 0: mosquitto's default
	extra                  []string
}

// String renders the configuration for mosquitto 2.0 (mosquitto.conf(5)). Paths may
// contain spaces: mosquitto takes the rest of the line as the value.
func (c mosquittoConf) String() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# written by testsvc.StartMosquitto")
	if c.root {
		// Started as root, mosquitto 2.0 switches to user "mosquitto", which cannot write
		// the persistence file into the test's root-owned 0700 temporary directory.
		line("user root")
	}
	// Security settings (allow_anonymous, password_file) apply to every listener alike.
	line("per_listener_settings false")
	if c.passwordFile == "" {
		// Since 2.0 a broker with listeners configured refuses anonymous clients by default.
		line("allow_anonymous true")
	} else {
		line("allow_anonymous false")
		line("password_file %s", c.passwordFile)
	}
	line("persistence true")
	// 2.0 adds the '/' between location and file itself; 1.x needed a trailing slash.
	line("persistence_location %s", c.dataDir)
	line("persistence_file mosquitto.db")
	line("log_dest stderr")
	line("log_type all")
	line("log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S")
	line("connection_messages true")
	if c.maxInflight > 0 {
		line("max_inflight_messages %d", c.maxInflight)
	}
	if c.maxQueued > 0 {
		line("max_queued_messages %d", c.maxQueued)
	}
	for _, l := range c.extra {
		line("%s", l)
	}
	line("")
	line("listener %d 127.0.0.1", c.port)
	if c.tlsPort != 0 {
		line("")
		line("listener %d 127.0.0.1", c.tlsPort)
		line("cafile %s", c.cafile)
		line("certfile %s", c.certfile)
		line("keyfile %s", c.keyfile)
		line("require_certificate %t", c.requireCert)
	}
	return b.String()
}

// Start starts the broker again on the same ports, configuration and persistence file
// (after Stop) and waits until the log says it runs and every listener accepts
// connections (the log line rules out some other process holding one of the ports).
func (m *Mosquitto) Start(t testing.TB) {
	t.Helper()
	m.proc.start(t)
}

// ready reports whether the log, from offset from on, says the broker runs and each
// listener accepts a TCP connection.
func (m *Mosquitto) ready(from int64) error {
	b, err := os.ReadFile(m.Log)
	if err != nil {
		return err
	}
	if int64(len(b)) < from || !strings.Contains(string(b[from:]), " running") {
		return fmt.Errorf("no \"running\" line in the log yet")
	}
	for _, p := range m.ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// Stop stops the broker with SIGTERM and waits for it to exit; mosquitto writes its
// persistence file on the way out, and clients see their connections close. Start
// brings it back. Stopping a stopped broker does nothing.
func (m *Mosquitto) Stop(t testing.TB) {
	t.Helper()
	m.proc.stop(t)
}

// Publish publishes payload to topic through a short-lived MQTT 3.1.1 client on URL
// (logged in as "testsvc-publish" when the broker has Users) and returns once the
// broker has it: after PUBACK or PUBCOMP for QoS 1 and 2, after the write for QoS 0.
// Any error fails the test.
func (m *Mosquitto) Publish(t testing.TB, topic string, qos byte, retained bool, payload []byte) {
	t.Helper()
	if !m.proc.running() {
		t.Fatalf("mosquitto: Publish while stopped")
	}
	opts := mqtt.NewClientOptions().
		AddBroker(m.URL).
		SetClientID(fmt.Sprintf("testsvc-pub-%d-%d", os.Getpid(), publishSeq.Add(1))).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(publishTimeout)
	if m.password != "" {
		opts.SetUsername(publishUser).SetPassword(m.password)
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
		t.Fatalf("publish to %s: connect to %s: %v", topic, m.URL, tokenError(tok, publishTimeout))
	}
	// Disconnect sends DISCONNECT after the PUBLISH, so a QoS 0 message is not lost
	// by closing too early; 100 ms is the most it waits for outstanding work.
	defer c.Disconnect(100)
	if tok := c.Publish(topic, qos, retained, payload); !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
		t.Fatalf("publish to %s: %v", topic, tokenError(tok, publishTimeout))
	}
}

// tokenError is a paho token's error, or a timeout error when it has not completed.
func tokenError(tok mqtt.Token, timeout time.Duration) error {
	select {
	case <-tok.Done():
		return tok.Error()
	default:
		return fmt.Errorf("no answer within %v", timeout)
	}
}
