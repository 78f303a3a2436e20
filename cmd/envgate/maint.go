package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/derive"
	"github.com/envgate/envgate/gateway/maint"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// The maintenance API of a running gateway (issue 16; docs/operations.md,
// "Maintenance and calibration"):
//
//	GET  /api/maint         every window the log holds, and the active ones
//	POST /api/maint/start   {"device": D, "kind": "maintenance"|"calibration", "reason": R}
//	POST /api/maint/stop    {"device": D}
//
// The whole server is behind gateway.web_config_file's basic auth when it has users.
// A change is accepted only from a request the server authenticated that way, or from
// the box itself (a loopback peer): a gateway listening on the network without
// passwords lets anyone read its status, but no one put its devices out of the
// derivations. A change also needs Content-Type application/json, which a web page
// elsewhere cannot send to the gateway without the CORS preflight it never answers.

// maintRequest is the body of POST /api/maint/start and /api/maint/stop.
type maintRequest struct {
	Device string `json:"device"`
	Kind   string `json:"kind,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// maintList is the answer of GET /api/maint.
type maintList struct {
	Now     time.Time      `json:"now"`     // the gateway's clock
	Active  []maint.Window `json:"active"`  // by device
	Windows []maint.Window `json:"windows"` // by device, then oldest first
}

// maxMaintBody bounds a request body: a device name and a reason.
const maxMaintBody = 4 << 10

// maintHandler serves the maintenance API over log for cfg's devices and hands every
// other request to next.
func maintHandler(log *maint.Log, cfg *config.Config, slog *slog.Logger, next http.Handler) http.Handler {
	known := configuredDevices(cfg)
	webConfig := cfg.Gateway.WebConfigFile
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/maint", func(w http.ResponseWriter, _ *http.Request) {
		l := maintList{Now: clock.Now().UTC(), Active: []maint.Window{}, Windows: log.Windows()}
		if l.Windows == nil {
			l.Windows = []maint.Window{}
		}
		for _, wd := range l.Windows {
			if wd.Active() {
				l.Active = append(l.Active, wd)
			}
		}
		writeJSON(w, http.StatusOK, l)
	})
	change := func(stop bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := maintAllowed(r, webConfig); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			var req maintRequest
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMaintBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				http.Error(w, "request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			// A window is stopped whatever the config says now: a device taken out of
			// the config while in maintenance must not stay there for good. Stop
			// refuses a device without an active window (409).
			if !stop && !slices.Contains(known, req.Device) {
				http.Error(w, fmt.Sprintf("device %q is not in the gateway's config (devices: %s)", req.Device, strings.Join(known, ", ")),
					http.StatusNotFound)
				return
			}
			now := clock.Now()
			if !clock.Plausible(now) {
				http.Error(w, fmt.Sprintf("the gateway's clock (%s) is not set yet: a window needs a true time; wait for NTP",
					now.UTC().Format(time.RFC3339)), http.StatusServiceUnavailable)
				return
			}
			var wd maint.Window
			var err error
			if stop {
				wd, err = log.Stop(req.Device, now)
			} else {
				var kind maint.Kind
				if kind, err = maint.ParseKind(cmp.Or(req.Kind, "maintenance")); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				wd, err = log.Start(req.Device, kind, req.Reason, now)
			}
			switch {
			case errors.Is(err, maint.ErrNotInMaintenance):
				http.Error(w, err.Error(), http.StatusConflict)
				return
			case errors.Is(err, maint.ErrInvalid):
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			case err != nil:
				slog.Error("cannot write the maintenance log", "device", req.Device, "err", err)
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if stop {
				slog.Info("maintenance window stopped", "device", wd.Device, "kind", wd.Kind.String(), "since", wd.Start)
			} else {
				slog.Info("maintenance window started", "device", wd.Device, "kind", wd.Kind.String(), "reason", wd.Reason, "since", wd.Start)
			}
			writeJSON(w, http.StatusOK, wd)
		}
	}
	mux.HandleFunc("POST /api/maint/start", change(false))
	mux.HandleFunc("POST /api/maint/stop", change(true))
	mux.Handle("/", next)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// maintAllowed reports why r may not change the maintenance log, or nil: it must be
// JSON, and come from loopback or through the basic auth of webConfig (which the
// exporter toolkit checked before the request got here, if the file has users).
//
// Loopback is trusted only when the Host header is an IP address or localhost: a web
// page whose DNS name an attacker points at 127.0.0.1 (DNS rebinding) reaches the
// gateway from loopback too, but its requests carry that name.
func maintAllowed(r *http.Request, webConfig string) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errors.New("a maintenance change must be sent as Content-Type: application/json")
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && localHost(r.Host) {
			return nil
		}
	}
	if _, _, ok := r.BasicAuth(); ok && webUsers(webConfig) {
		return nil
	}
	return errors.New("maintenance changes are accepted from the box itself (to an IP address or localhost), or from elsewhere " +
		"with a user of gateway.web_config_file's basic_auth_users; this gateway has none")
}

// localHost reports whether the Host header h (with or without a port) is an IP
// address or localhost, a name no one else's DNS gives.
func localHost(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return strings.EqualFold(h, "localhost") || net.ParseIP(h) != nil
}

// webUsers reports whether the web config file name has basic-auth users. It is read
// at every change, as the exporter toolkit reads it at every request.
func webUsers(name string) bool {
	if name == "" {
		return false
	}
	b, err := config.ReadFile(name, config.MaxWebConfigFile)
	if err != nil {
		return false
	}
	var wc struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	return yaml.Unmarshal(b, &wc) == nil && len(wc.Users) > 0
}

// configuredDevices is every device name cfg gives (config's DeviceNames: simulated,
// Modbus, particulate, the devices MQTT subscriptions name, HJ 212 stations), and the
// devices of the noise and air monitors (with their weather devices), sorted. Devices
// known only from MQTT topics are not.
func configuredDevices(cfg *config.Config) []string {
	names := cfg.DeviceNames()
	for _, s := range cfg.Noise.Sites {
		names = append(names, s.Device)
		if s.Weather != "" {
			names = append(names, s.Weather)
		}
	}
	for _, s := range cfg.Air.Sites {
		names = append(names, s.Device)
	}
	slices.Sort(names)
	// The gateway's own health readings are not a device anyone services.
	return slices.DeleteFunc(slices.Compact(names), func(n string) bool { return n == "" || n == reading.HealthDevice })
}

// maintStates is the maintenance state of cfg's devices for the metrics: log's active
// windows, and the readings set kept out of the derivations.
func maintStates(log *maint.Log, cfg *config.Config, set *derive.Set) func() []metrics.MaintState {
	devices := configuredDevices(cfg)
	return func() []metrics.MaintState {
		excluded := set.Excluded()
		out := make([]metrics.MaintState, 0, len(devices))
		for _, d := range devices {
			s := metrics.MaintState{Device: d, Excluded: excluded[d]}
			if w, ok := log.Active(d); ok {
				s.Kind, s.Reason, s.Since = w.Kind.String(), w.Reason, w.Start
			}
			out = append(out, s)
		}
		return out
	}
}

// ---- envgate maint: the client ----

const maintUsage = `usage: envgate maint start|stop|list [-c FILE | --listen ADDR] [--device D] [--kind maintenance|calibration] [--reason TEXT]`

// cmdMaint starts, stops or lists the maintenance and calibration windows of a running
// gateway through its HTTP API.
func cmdMaint(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !slices.Contains([]string{"start", "stop", "list"}, args[0]) {
		fmt.Fprintf(stderr, "envgate maint: want start, stop or list\n%s\n", maintUsage)
		return 2
	}
	action := args[0]
	fs := flag.NewFlagSet("maint "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file of the gateway: reach the one listening on its gateway.listen")
	listen := fs.String("listen", "", "HTTP address of the gateway (overrides -c; default "+config.DefaultListen+")")
	device := fs.String("device", "", "the device (start, stop)")
	kind := fs.String("kind", "maintenance", "maintenance (HJ 212 flag M) or calibration (flag C)")
	reason := fs.String("reason", "", "what is being done, for the log book and the status page")
	useTLS := fs.Bool("https", false, "speak HTTPS (set by -c when the gateway's web_config_file configures TLS)")
	caFile := fs.String("ca", "", "PEM file of the CA (or self-signed certificate) to trust for HTTPS, besides the system's")
	user := fs.String("user", "", "basic-auth user of the gateway's web_config_file; the password comes from $ENVGATE_PASSWORD or is asked for")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if action != "list" && *device == "" {
		problems = append(problems, "--device D is required")
	}
	if _, err := maint.ParseKind(*kind); err != nil {
		problems = append(problems, "--kind: "+err.Error())
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "envgate maint %s: %s\n", action, p)
		}
		fmt.Fprintln(stderr, maintUsage)
		return 2
	}
	addr, ok := daemonAddr("maint", *path, *listen, useTLS, stderr)
	if !ok {
		return 1
	}
	conn := tailConn{addr: dialAddr(addr), user: *user}
	if *useTLS || *caFile != "" {
		tlsCfg, err := tailTLS(*caFile)
		if err != nil {
			fmt.Fprintf(stderr, "envgate maint: --ca: %v\n", err)
			return 2
		}
		conn.tls = tlsCfg
	}
	if *user != "" {
		password, err := tailPassword(stderr)
		if err != nil {
			fmt.Fprintf(stderr, "envgate maint: %v\n", err)
			return 2
		}
		conn.password = password
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var body []byte
	if action != "list" {
		body, _ = json.Marshal(maintRequest{Device: *device, Kind: *kind, Reason: *reason})
		if action == "stop" {
			body, _ = json.Marshal(maintRequest{Device: *device})
		}
	}
	resp, err := maintCall(ctx, conn, action, body)
	if err != nil {
		fmt.Fprintf(stderr, "envgate maint %s: %v\n", action, err)
		return 1
	}
	if action == "list" {
		var l maintList
		if err := json.Unmarshal(resp, &l); err != nil {
			fmt.Fprintf(stderr, "envgate maint list: the gateway's answer: %v\n", err)
			return 1
		}
		printMaintList(stdout, l)
		return 0
	}
	var w maint.Window
	if err := json.Unmarshal(resp, &w); err != nil {
		fmt.Fprintf(stderr, "envgate maint %s: the gateway's answer: %v\n", action, err)
		return 1
	}
	if action == "start" {
		fmt.Fprintf(stdout, "%s: %s since %s%s; its readings are kept out of the derivations until `envgate maint stop --device %s`\n",
			w.Device, w.Kind, localTime(w.Start), reasonOf(w), w.Device)
	} else {
		fmt.Fprintf(stdout, "%s: %s stopped, %s to %s%s\n", w.Device, w.Kind, localTime(w.Start), localTime(w.End), reasonOf(w))
	}
	return 0
}

func localTime(t time.Time) string { return t.Local().Format("2006-01-02T15:04:05Z07:00") }

func reasonOf(w maint.Window) string {
	if w.Reason == "" {
		return ""
	}
	return fmt.Sprintf(" (%s)", w.Reason)
}

// printMaintList prints the active windows, then the history, one per line.
func printMaintList(w io.Writer, l maintList) {
	if len(l.Active) == 0 {
		fmt.Fprintln(w, "no device in maintenance or calibration")
	}
	for _, a := range l.Active {
		fmt.Fprintf(w, "%s: %s since %s%s\n", a.Device, strings.ToUpper(a.Kind.String()), localTime(a.Start), reasonOf(a))
	}
	var past []maint.Window
	for _, x := range l.Windows {
		if !x.Active() {
			past = append(past, x)
		}
	}
	if len(past) > 0 {
		fmt.Fprintln(w, "\npast windows:")
	}
	for _, x := range past {
		fmt.Fprintf(w, "%s: %s %s to %s%s\n", x.Device, x.Kind, localTime(x.Start), localTime(x.End), reasonOf(x))
	}
}

// maintCall sends one request of the maintenance API and returns the answer's body,
// or an error an installer can act on.
func maintCall(ctx context.Context, c tailConn, action string, body []byte) ([]byte, error) {
	scheme := "http"
	if c.tls != nil {
		scheme = "https"
	}
	method, u := http.MethodGet, scheme+"://"+c.addr+"/api/maint"
	if action != "list" {
		method, u = http.MethodPost, u+"/"+action
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("gateway address %q: %w", c.addr, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig: c.tls,
	}}
	resp, err := client.Do(req)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("no gateway answers at %s: is envgate running there? (start it with `envgate run -c FILE`; "+
			"give its address with --listen ADDR or its config with -c FILE)", c.addr)
	case err != nil:
		return nil, fmt.Errorf("cannot reach the gateway at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", c.addr, err)
	}
	msg := strings.TrimSpace(string(b))
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusNotFound:
		if strings.HasPrefix(msg, "device ") {
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("the server at %s has no maintenance API (/api/maint): is it an envgate of this version?", c.addr)
	case http.StatusUnauthorized:
		if c.user == "" {
			return nil, fmt.Errorf("the gateway at %s asks for a password (gateway.web_config_file): give --user NAME and ENVGATE_PASSWORD", c.addr)
		}
		return nil, fmt.Errorf("the gateway at %s refused user name or password of %q", c.addr, c.user)
	case http.StatusConflict, http.StatusBadRequest, http.StatusForbidden, http.StatusServiceUnavailable:
		return nil, errors.New(msg)
	}
	return nil, fmt.Errorf("the gateway at %s answered %s: %s", c.addr, resp.Status, msg)
}

// openMaint opens the maintenance log of a gateway with state directory stateDir.
func openMaint(stateDir string, log *slog.Logger) (*maint.Log, error) {
	l, err := maint.Open(maintPath(stateDir), log.With("component", "maint"))
	if err != nil {
		return nil, fmt.Errorf("%w (fix its permissions, or move it away to start with no device in maintenance)", err)
	}
	return l, nil
}

func maintPath(stateDir string) string { return filepath.Join(stateDir, maint.FileName) }
