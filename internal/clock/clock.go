// Package clock is the gateway's wall clock. It is time.Now. Exactly these read it:
//
//   - stamps: the simulator's readings, an MQTT message's arrival time (the stamp of a
//     reading whose payload carries none, and the bound a payload's own time must keep),
//     the gateway's own health readings, and the MQTT device expiry;
//   - judges of a stamp's age: gateway/derive (a live monitor refuses a reading more
//     than a week old or a minute ahead), the pipeline's derive tick and live states,
//     and the forwarders' oldest-unsent age.
//
// BuildTime (build.go) bounds them all from below: a wall clock before it is certainly
// wrong, and the pipeline holds the readings it stamped (docs/design.md, section 11).
//
// Everything else in the gateway reads time.Now directly, on purpose: the Modbus and
// PM drivers stamp their readings with it, because their poll timing and their stamps
// must share one clock (docs/design.md, section 8); so do the metrics' last-success
// times, the InfluxDB dead-letter lines, the buffer's segment ages, schedules and
// timeouts, none of which a live monitor judges.
//
// A test build with the fakeclock tag shifts it by the duration in EnvOffset, so that
// scripts/test.sh can run the date-sensitive tests as if on a day far from the one they
// were written on: a test whose fixed dates only work near that day fails there, not
// weeks later on a fresh clone (issue 10). Release builds have no tag and read nothing.
package clock

// EnvOffset names the environment variable a fakeclock build shifts its clock by: a Go
// duration such as "9600h" (400 days ahead) or "-9600h". The binary a test builds and
// starts inherits it, so the test and the gateway share one shifted clock.
const EnvOffset = "ENVGATE_TEST_CLOCK_OFFSET"
