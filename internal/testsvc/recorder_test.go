package testsvc

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRecorderCountsAcceptedLines writes the same two points twice through the recorder,
// once plain and once gzipped: InfluxDB holds two points, the recorder saw four lines,
// two distinct. Refused and rejected writes are not counted.
func TestRecorderCountsAcceptedLines(t *testing.T) {
	db := StartInflux(t)
	rec := StartRecorder(t, db.URL)
	body := "noise,device=n1 la=55.5 1764316800000\nnoise,device=n1 la=56 1764316801000\n"
	post := func(data []byte, gzipped bool) int {
		t.Helper()
		u := rec.URL + "/api/v2/write?" + url.Values{"bucket": {db.Bucket}, "precision": {"ms"}}.Encode()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte(body))
	zw.Close()
	if code := post([]byte(body), false); code != http.StatusNoContent {
		t.Fatalf("plain write: %d", code)
	}
	if code := post(zipped.Bytes(), true); code != http.StatusNoContent {
		t.Fatalf("gzip write: %d", code)
	}
	if code := post([]byte("not line protocol\n"), false); code != http.StatusBadRequest {
		t.Fatalf("bad write: %d, want 400", code)
	}
	rec.Refuse(true)
	if code := post([]byte(body), false); code != http.StatusServiceUnavailable {
		t.Fatalf("refused write: %d, want 503", code)
	}
	rec.Refuse(false)
	if total, distinct := rec.Written(); total != 4 || distinct != 2 || rec.Requests() != 2 {
		t.Errorf("Written() = %d, %d, Requests() = %d; want 4, 2, 2", total, distinct, rec.Requests())
	}
	for l, n := range rec.Lines() {
		if n != 2 || !strings.HasPrefix(l, "noise,device=n1 la=") {
			t.Errorf("line %q accepted %d times, want 2", l, n)
		}
	}
	if n := db.Count(t, "noise", "la"); n != 2 {
		t.Errorf("InfluxDB holds %d points, want 2", n)
	}
}
