package testsvc

import (
	"testing"
)

func TestInfluxWriteQueryRestart(t *testing.T) {
	db := StartInflux(t)
	db.Write(t,
		`noise,gateway=g1,site=运河东\ 3,device=n1 la=55.5 1764316800000000000`,
		`noise,gateway=g1,site=运河东\ 3,device=n1 la=56 1764316801000000000`,
	)
	check := func(when string) {
		t.Helper()
		rows := db.Query(t, `SELECT la FROM noise GROUP BY *`)
		if len(rows) != 2 {
			t.Fatalf("%s: SELECT la = %d rows %+v, want 2", when, len(rows), rows)
		}
		r := rows[0]
		if r.Measurement != "noise" || r.Time != 1764316800000 || r.Values["la"] != 55.5 ||
			r.Tags["site"] != "运河东 3" || r.Tags["gateway"] != "g1" || r.Tags["device"] != "n1" {
			t.Errorf("%s: row 0 = %+v", when, r)
		}
		if rows[1].Time != 1764316801000 || rows[1].Values["la"] != 56.0 {
			t.Errorf("%s: row 1 = %+v", when, rows[1])
		}
		if n := db.Count(t, "noise", "la"); n != 2 {
			t.Errorf("%s: Count(noise, la) = %d, want 2", when, n)
		}
	}
	check("before restart")

	db.Stop(t)
	db.Start(t)
	check("after restart")

	if n := db.Count(t, "air", "pm25"); n != 0 {
		t.Errorf("Count(air, pm25) = %d, want 0 for a missing measurement", n)
	}
}

func TestHasTimestamp(t *testing.T) {
	check := func(line string, want bool) {
		t.Helper()
		if got := hasTimestamp(line); got != want {
			t.Errorf("hasTimestamp(%q) = %v, want %v", line, got, want)
		}
	}
	check(`air,device=d pm25=12.5`, false)
	check(`air,device=d pm25=12.5 1764316800000000000`, true)
	check(`noise,site=运河东\ 3,device=n1 la=55.5`, false)
	check(`noise,site=运河东\ 3,device=n1 la=55.5 1764316800000000000`, true)
	check(`m,t=a note="two words here",v=1`, false)
	check(`m,t=a note="a \" quote and space",v=1 1764316800000000000`, true)
}

func TestBinaryMissing(t *testing.T) {
	t.Setenv("CI", "") // the local rule; under CI=true Binary fails the test instead
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Binary(t, "envgate-no-such-binary", "nothing to install")
	})
	if !skipped {
		t.Errorf("Binary(missing) did not skip the test")
	}
}

func TestFreePort(t *testing.T) {
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Errorf("FreePort() = %d", p)
	}
}
