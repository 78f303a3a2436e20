package influx

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// The forwarder prepares and sends several batches at once (gateway.Preparer): against
// a real InfluxDB, eight goroutines preparing, sending (one send twice) and writing at
// the same time, with gzip, invalid readings to dead-letter: every valid point is stored
// once, the invalid ones dead-lettered once per batch, the counters add up (and -race
// finds nothing).
func TestInfluxDBConcurrentPrepareAndSend(t *testing.T) {
	db := testsvc.StartInflux(t)
	s, _ := realSink(t, db, func(c *Config) { c.Gzip = true })
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	const workers, batches, per = 8, 5, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches*2)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				rs := make([]reading.Reading, 0, per+1)
				for i := range per {
					n := (w*batches+b)*per + i
					rs = append(rs, reading.New(at.Add(time.Duration(n)*time.Millisecond), "site", "d", "pm25", float64(n)))
				}
				rs = append(rs, reading.New(at, "site", "d", "pm25", math.NaN())) // invalid: dead-lettered
				if b%2 == 0 {
					send := s.Prepare(rs)
					errs <- send(t.Context())
					errs <- send(t.Context()) // sent again, as after a failure
				} else {
					errs <- s.Write(t.Context(), rs)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := db.Count(t, "air", "pm25"); n != workers*batches*per {
		t.Errorf("Count(air, pm25) = %d, want %d", n, workers*batches*per)
	}
	sends := workers * (batches + (batches+1)/2)
	if st := s.Stats(); st.Written != uint64(sends*per) || st.DeadLettered != uint64(sends) || st.Rejected != 0 {
		t.Errorf("Stats() = %+v, want %d written, %d dead-lettered", st, sends*per, sends)
	}
}
