// Package clock is the gateway's wall clock: the one that stamps readings (the
// simulator, MQTT arrival, health) and that judges their age (gateway/derive refuses
// readings more than a week old or a minute ahead). It is time.Now.
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
