package influx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/testsvc"
)

// TestProbe: Probe asks GET /ping (resolved against the URL as the write API is, with
// the token), succeeds on 2xx only, names the status or the network error without the
// token, is bounded by its timeout, and fails after Close.
func TestProbe(t *testing.T) {
	var code atomic.Int32
	var hang atomic.Bool
	var path, auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.Method + " " + r.URL.Path)
		auth.Store(r.Header.Get("Authorization"))
		if hang.Load() {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	cfg := testConfig(t, srv.URL+"/influx/")
	cfg.Timeout = 200 * time.Millisecond
	s := newSink(t, cfg)

	code.Store(http.StatusNoContent)
	if err := s.Probe(t.Context()); err != nil {
		t.Errorf("Probe with 204: %v", err)
	}
	if got := path.Load(); got != "GET /influx/ping" {
		t.Errorf("request %q, want GET /influx/ping", got)
	}
	if got := auth.Load(); got != "Token "+testToken {
		t.Errorf("Authorization %q, want the token", got)
	}
	for _, c := range []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusUnauthorized} {
		code.Store(int32(c))
		err := s.Probe(t.Context())
		if err == nil || !strings.Contains(err.Error(), http.StatusText(c)) || !strings.Contains(err.Error(), "influx sink cloud: ping") {
			t.Errorf("Probe with %d: %v, want an error naming the sink and the status", c, err)
		}
	}
	hang.Store(true)
	start := time.Now()
	if err := s.Probe(t.Context()); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("Probe of a server that does not answer: %v after %v, want an error after the 200 ms timeout", err, time.Since(start))
	}
	hang.Store(false)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Probe(ctx); err == nil {
		t.Error("Probe with a cancelled context succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Probe(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Probe after Close: %v, want ErrClosed", err)
	}
}

// TestProbeNoServer: nothing listening is a failed probe whose error keeps the token out.
func TestProbeNoServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cfg := testConfig(t, url)
	cfg.Token = "user:s3cretpass"
	s := newSink(t, cfg)
	err := s.Probe(t.Context())
	if err == nil || strings.Contains(err.Error(), "s3cretpass") {
		t.Errorf("Probe with no server: %v, want an error without the password", err)
	}
}

// TestInfluxDBProbe: a real InfluxDB 1.8 answers the probe while it runs; a stopped one
// fails it, and it answers again after a restart.
func TestInfluxDBProbe(t *testing.T) {
	db := testsvc.StartInflux(t)
	s, _ := realSink(t, db, nil)
	if err := s.Probe(t.Context()); err != nil {
		t.Fatalf("Probe of a running InfluxDB: %v", err)
	}
	db.Stop(t)
	if err := s.Probe(t.Context()); err == nil {
		t.Error("Probe of a stopped InfluxDB succeeded")
	}
	db.Start(t)
	if err := s.Probe(t.Context()); err != nil {
		t.Errorf("Probe after the restart: %v", err)
	}
}
