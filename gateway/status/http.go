package status

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"time"
)

// assets are the page's files: plain HTML, CSS and JavaScript, written by hand, with
// nothing fetched from elsewhere and nothing to build.
//
//go:embed assets
var assets embed.FS

// Stream timing of /api/readings.
const (
	// DefaultHeartbeat is how often a stream with nothing else to send sends a
	// heartbeat line, so that its reader can tell a quiet gateway from a dead link.
	DefaultHeartbeat = 15 * time.Second
	// streamWriteTimeout is how long one write to a stream may take: a reader that
	// stops reading loses its stream (and its connection slot) after it.
	streamWriteTimeout = 10 * time.Second
	// maxBurst is how many queued readings one write sends at most.
	maxBurst = 256
)

// contentSecurity lets the page load only its own files and talk only to its gateway.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves, read-only:
//
//	GET /               the status page
//	GET /assets/...     its script and style sheet
//	GET /api/status     the Status document (JSON)
//	GET /api/readings   the readings as they arrive, newline-delimited JSON (Line);
//	                    ?device=, ?site=, ?quantity= (comma-separated lists) filter them
//
// and hands every other request to next (the metrics handler: /metrics, /healthz), or
// answers 404 when next is nil.
func (s *Server) Handler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		files.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /api/status", s.serveStatus)
	mux.HandleFunc("GET /api/readings", s.serveReadings)
	if next != nil {
		mux.Handle("/", next)
	}
	return mux
}

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurity)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(s.Status())
	if err != nil {
		http.Error(w, "cannot encode the status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) serveReadings(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Feed == nil {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	f := Filter{Devices: SplitList(q.Get("device")), Sites: SplitList(q.Get("site")), Quantities: SplitList(q.Get("quantity"))}
	sub, err := s.cfg.Feed.Subscribe(f, s.queue)
	switch {
	case errors.Is(err, ErrTooMany):
		w.Header().Set("Retry-After", "10")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer sub.Cancel()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// send writes lines under a deadline of its own: a stream outlives the server's
	// write timeout, and a reader that stops reading must not hold it for ever.
	send := func(lines ...[]byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		for _, l := range lines {
			if _, err := w.Write(l); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	if !send() {
		return
	}
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	var batch [][]byte
	dropped := func() {
		if n := sub.Dropped(); n > 0 {
			b, _ := encode(Line{Dropped: n})
			batch = append(batch, b)
		}
	}
	for {
		batch = batch[:0]
		select {
		case <-r.Context().Done():
			return
		case <-sub.Done():
			return
		case <-heartbeat.C:
			dropped()
			now := s.cfg.Now().UTC()
			b, _ := encode(Line{Heartbeat: &now})
			batch = append(batch, b)
		case rd := <-sub.C():
			dropped()
			if b, err := EncodeReading(rd); err == nil {
				batch = append(batch, b)
			}
			for more := true; more && len(batch) < maxBurst; {
				select {
				case rd := <-sub.C():
					if b, err := EncodeReading(rd); err == nil {
						batch = append(batch, b)
					}
				default:
					more = false
				}
			}
		}
		if !send(batch...) {
			return
		}
		heartbeat.Reset(s.heartbeat)
	}
}
