package remotewrite

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// inOrderReceiver answers as Prometheus 2.42 without an out-of-order window
// (docs/remote-write.md): a request holding a sample older than the newest stored of its
// series is rejected whole, 400 "out of order sample"; otherwise every sample is stored.
type inOrderReceiver struct {
	mu     sync.Mutex
	newest map[string]int64
	stored map[string]map[int64]bool
}

func (o *inOrderReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	body, err := snappy.Decode(nil, raw)
	var req prompb.WriteRequest
	if err == nil {
		err = req.Unmarshal(body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ts := range req.Timeseries {
		n, ok := o.newest[labelsKey(ts)]
		for _, s := range ts.Samples {
			if ok && s.Timestamp < n {
				http.Error(w, "out of order sample", http.StatusBadRequest)
				return
			}
		}
	}
	for _, ts := range req.Timeseries {
		key := labelsKey(ts)
		if o.stored[key] == nil {
			o.stored[key] = map[int64]bool{}
		}
		for _, s := range ts.Samples {
			o.stored[key][s.Timestamp] = true
			if n, ok := o.newest[key]; !ok || s.Timestamp > n {
				o.newest[key] = s.Timestamp
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// labelsKey identifies a series by its labels.
func labelsKey(ts prompb.TimeSeries) string {
	var b strings.Builder
	for _, l := range ts.Labels {
		b.WriteString(l.Name + "=" + l.Value + "\x00")
	}
	return b.String()
}

// TestWriteResendAfterCrash: the first write after a crash re-sends samples the
// receiver holds, followed by new ones, in one batch. With up to about
// MaxSplitRequests/2 re-sent samples (20 here) every new sample is stored and only
// re-sent older ones are dead-lettered (copies of stored samples), as
// docs/remote-write.md says; beyond that, the docs say what happens.
func TestWriteResendAfterCrash(t *testing.T) {
	const stored, resent, fresh = 500, 20, 980
	o := &inOrderReceiver{newest: map[string]int64{}, stored: map[string]map[int64]bool{}}
	srv := httptest.NewServer(o)
	defer srv.Close()
	s, err := New(Config{Name: "central", URL: srv.URL + "/api/v1/write", Timeout: 2 * time.Second, GatewayID: "box-7",
		DeadLetter: filepath.Join(t.TempDir(), "central.lp")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(i int) reading.Reading {
		return reading.New(t0.Add(time.Duration(i)*time.Second), "park-3", "noise-1", "la", float64(i%50))
	}
	var before, after []reading.Reading
	for i := range stored {
		before = append(before, at(i))
	}
	for i := stored - resent; i < stored+fresh; i++ {
		after = append(after, at(i))
	}
	if err := s.Write(t.Context(), before); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), after); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, m := range o.stored {
		for i := stored; i < stored+fresh; i++ {
			if m[at(i).Time.UnixMilli()] {
				got++
			}
		}
	}
	if got != fresh {
		t.Errorf("the receiver holds %d of the %d new samples", got, fresh)
	}
	// The newest re-sent sample is identical to the stored one: accepted.
	if st := s.Stats(); st.DeadLettered != resent-1 {
		t.Errorf("Stats() = %+v, want %d re-sent samples dead-lettered", st, resent-1)
	}
}
