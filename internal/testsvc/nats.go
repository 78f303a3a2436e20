package testsvc

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// NATSInstallHint tells how to install the server (Debian bookworm: nats-server 2.9.10,
// which speaks MQTT 3.1.1 on top of JetStream).
const NATSInstallHint = "apt-get install nats-server, or scripts/install-deps.sh"

const (
	natsReadyTimeout = 30 * time.Second // a JetStream cluster elects its leaders in seconds
	natsStopTimeout  = 10 * time.Second
	natsLogTail      = 40
	natsClusterName  = "envgate-test"
)

// NATSCluster is a cluster of nats-server processes on loopback, started by
// StartNATSCluster for one test: every node runs JetStream and an MQTT 3.1.1 listener,
// and MQTT sessions, retained messages and QoS 1 messages are kept in JetStream streams
// replicated to every node, so that the cluster survives the loss of one node of three.
// This is the "broker cluster" of docs/fleet.md on one host. Its methods are for the
// test goroutine only.
type NATSCluster struct {
	Nodes []*NATSNode
}

// NATSNode is one server of a NATSCluster.
type NATSNode struct {
	Name    string // server_name: "n1", "n2", ...
	MQTTURL string // "tcp://127.0.0.1:port", for paho
	URL     string // the NATS client port, "nats://127.0.0.1:port"
	Dir     string // configuration, JetStream store and log
	Log     string

	monitor string // the monitoring endpoint, "http://127.0.0.1:port"
	ports   []int
	proc    *process
}

// StartNATSCluster starts n nats-server nodes (n ≥ 1; 3 to survive the loss of one)
// clustered on free loopback ports, with their files in t.TempDir(); it waits until
// every node is healthy, the JetStream meta group has a leader that every node knows,
// and every MQTT listener accepts connections, and stops the nodes in t.Cleanup. When
// the test fails, the tail of each node's log is printed. Under -short it skips,
// unless CI=true; a missing nats-server skips the test, or fails it under CI=true.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	if testing.Short() && !inCI() {
		t.Skip("integration test with a real NATS cluster; skipped with -short")
	}
	if n < 1 {
		t.Fatalf("StartNATSCluster: %d nodes; want at least 1", n)
	}
	bin := sbinBinary(t, "nats-server", NATSInstallHint)
	c := &NATSCluster{}
	var taken, routes []int
	port := func() int {
		p := freePortExcept(t, taken)
		taken = append(taken, p)
		return p
	}
	type nodePorts struct{ client, http, route, mqtt int }
	ps := make([]nodePorts, n)
	for i := range ps {
		ps[i] = nodePorts{client: port(), http: port(), route: port(), mqtt: port()}
		routes = append(routes, ps[i].route)
	}
	for i, p := range ps {
		dir := t.TempDir()
		node := &NATSNode{
			Name:    "n" + strconv.Itoa(i+1),
			MQTTURL: fmt.Sprintf("tcp://127.0.0.1:%d", p.mqtt),
			URL:     fmt.Sprintf("nats://127.0.0.1:%d", p.client),
			Dir:     dir,
			Log:     filepath.Join(dir, "nats-server.log"),
			monitor: fmt.Sprintf("http://127.0.0.1:%d", p.http),
			ports:   []int{p.client, p.mqtt},
		}
		conf := filepath.Join(dir, "nats-server.conf")
		if err := os.WriteFile(conf, []byte(natsConf(node.Name, filepath.Join(dir, "js"), p.client, p.http, p.route, p.mqtt, n, routes)), 0o600); err != nil {
			t.Fatalf("write nats-server config: %v", err)
		}
		node.proc = &process{
			name: "nats-server " + node.Name + " on " + node.URL,
			bin:  bin, args: []string{"-c", conf}, log: node.Log,
			// Readiness of one node alone: its ports. The cluster's is checked below,
			// once every node runs (a JetStream cluster needs a quorum to elect).
			ready: node.listening, readyTimeout: natsReadyTimeout,
			stopWaits: []time.Duration{natsStopTimeout}, logTail: natsLogTail,
		}
		node.proc.run(t, "nats-server "+node.Name, node.Stop)
		c.Nodes = append(c.Nodes, node)
	}
	c.WaitReady(t)
	return c
}

// natsConf renders one node's configuration (nats-server 2.9 format).
func natsConf(name, store string, client, http, route, mqtt, n int, routes []int) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# written by testsvc.StartNATSCluster")
	line("server_name: %s", name)
	line("listen: 127.0.0.1:%d", client)
	line("http: 127.0.0.1:%d", http)
	line("jetstream {")
	line("  store_dir: %q", store)
	line("  max_memory_store: 64MB")
	line("  max_file_store: 1GB")
	line("}")
	if n > 1 {
		line("cluster {")
		line("  name: %s", natsClusterName)
		line("  listen: 127.0.0.1:%d", route)
		var rs []string
		for _, r := range routes {
			rs = append(rs, fmt.Sprintf("nats-route://127.0.0.1:%d", r))
		}
		line("  routes: [%s]", strings.Join(rs, ", "))
		line("}")
	}
	line("mqtt {")
	line("  listen: 127.0.0.1:%d", mqtt)
	// Sessions, retained and QoS 1 messages on every node: one node may go.
	line("  stream_replicas: %d", min(n, 3))
	line("}")
	return b.String()
}

// listening reports whether the node's client and MQTT ports accept connections.
func (node *NATSNode) listening(int64) error {
	for _, p := range node.ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// WaitReady waits until every running node listens, accepts an MQTT connection, and
// reports the same JetStream
// meta leader, itself running, and a running leader for every stream it holds (MQTT keeps sessions and messages in streams, whose leaders are elected again
// after a node is lost); it fails the test after natsReadyTimeout. (Not /healthz:
// nats-server 2.9.10 reports a restarted node unhealthy for as long as a replica of an
// idle MQTT consumer is "not current", which can outlast a test.)
// StartNATSCluster and Start call it; a test calls it after Kill to wait for a new
// leader.
func (c *NATSCluster) WaitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(natsReadyTimeout)
	var err error
	for {
		if err = c.ready(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NATS cluster not ready within %v: %v", natsReadyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *NATSCluster) ready() error {
	client := &http.Client{Timeout: 2 * time.Second}
	leader := ""
	running := map[string]bool{}
	for _, node := range c.Nodes {
		running[node.Name] = node.proc.running()
	}
	for _, node := range c.Nodes {
		if !running[node.Name] {
			continue
		}
		if err := node.listening(0); err != nil {
			return fmt.Errorf("%s: %v", node.Name, err)
		}
		if err := node.mqttConnects(); err != nil {
			// Until its MQTT streams exist and have leaders, a node answers CONNECT
			// by closing the connection.
			return fmt.Errorf("%s: MQTT: %v", node.Name, err)
		}
		l, streams, err := node.leaders(client)
		if err != nil {
			return fmt.Errorf("%s: %v", node.Name, err)
		}
		for name, sl := range streams {
			if sl == "" || !running[sl] {
				// MQTT sessions and messages live in these streams: a client
				// connecting now would time out.
				return fmt.Errorf("%s: stream %s has leader %q", node.Name, name, sl)
			}
		}
		switch {
		case l == "" || !running[l]:
			return fmt.Errorf("%s: JetStream meta leader %q", node.Name, l)
		case leader == "":
			leader = l
		case l != leader:
			return fmt.Errorf("nodes disagree on the JetStream meta leader: %s and %s", leader, l)
		}
	}
	return nil
}

// mqttConnects connects an MQTT 3.1.1 client with a clean session and disconnects.
func (node *NATSNode) mqttConnects() error {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(node.MQTTURL).
		SetClientID(fmt.Sprintf("testsvc-probe-%d-%d", os.Getpid(), publishSeq.Add(1))).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).
		SetConnectTimeout(2 * time.Second))
	tok := c.Connect()
	// Disconnect in every case: a connect still running past the wait (its dial and
	// handshake have a timeout each) would otherwise leave a live client behind, which
	// Disconnect ends once the connect is over.
	defer c.Disconnect(0)
	if !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		return tokenError(tok, 3*time.Second)
	}
	return nil
}

// leaders are the JetStream meta group's leader as the node sees it ("" for none), and
// the leader of each stream the node holds (the MQTT streams once a client connected).
func (node *NATSNode) leaders(client *http.Client) (meta string, streams map[string]string, err error) {
	resp, err := client.Get(node.monitor + "/jsz?accounts=true&streams=true")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	type cluster struct {
		Leader string `json:"leader"`
	}
	var jsz struct {
		Meta     *cluster `json:"meta_cluster"`
		Accounts []struct {
			Name    string `json:"name"`
			Streams []struct {
				Name    string   `json:"name"`
				Cluster *cluster `json:"cluster"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		return "", nil, fmt.Errorf("/jsz: %v", err)
	}
	streams = map[string]string{}
	for _, a := range jsz.Accounts {
		for _, st := range a.Streams {
			l := node.Name // a single node leads its own streams and reports no cluster
			if st.Cluster != nil {
				l = st.Cluster.Leader
			}
			streams[a.Name+" > "+st.Name] = l
		}
	}
	if jsz.Meta == nil {
		return node.Name, streams, nil
	}
	return jsz.Meta.Leader, streams, nil
}

// Kill ends the node with SIGKILL, as a crash or a power cut does: no goodbye to its
// clients or peers. Start brings it back.
func (node *NATSNode) Kill(t testing.TB) {
	t.Helper()
	if !node.proc.running() {
		t.Fatalf("%s: Kill while stopped", node.proc.name)
	}
	if err := node.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", node.proc.name, err)
	}
	<-node.proc.exited
	node.proc.release()
}

// Start starts a stopped or killed node again with its configuration and JetStream
// store, and waits until it listens (call the cluster's WaitReady to wait for it to
// rejoin).
func (node *NATSNode) Start(t testing.TB) {
	t.Helper()
	node.proc.start(t)
}

// Stop stops the node with SIGTERM and waits for it to exit (lame-duck mode is not
// used). Stopping a stopped node does nothing.
func (node *NATSNode) Stop(t testing.TB) {
	t.Helper()
	node.proc.stop(t)
}
