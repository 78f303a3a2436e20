// Command envgate is the edge gateway: it polls sensors, writes every reading to a
// durable on-disk buffer first, and forwards the buffer to InfluxDB.
//
//	envgate run -c FILE      run the gateway with a config file
//	envgate check -c FILE    check a config file and report every problem
//	envgate demo             run on embedded defaults with simulated devices
//	envgate tail [-c FILE]   print the readings of a running gateway as they arrive
//	envgate maint start|stop|list  mark a running gateway's device in maintenance or calibration
//	envgate replay -c FILE IN  derive noise levels, AQI and water class from recorded readings (CSV)
//	envgate hj212 ...        decode, encode or serve HJ 212-2017 packets
//	envgate hash-password    print the bcrypt hash of a password read from stdin
//	envgate version          print the version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

const usage = `envgate: edge gateway for city environmental monitoring

usage:
  envgate run -c FILE [--listen ADDR]   run the gateway
  envgate check -c FILE                 check a config file, report every problem
  envgate demo [--listen ADDR] [--state DIR] [--influx-url URL] [--duration D]
                                        run simulated devices on embedded defaults
  envgate ports                         list serial ports and their stable names
  envgate probe --port DEV --slave N --address A --count N
                                        read registers, show every decoding
  envgate scan --port DEV [--slaves 1-247] [--bauds LIST]
                                        find the slaves on a bus, print a config snippet
  envgate replay -c FILE INPUT.csv      derive noise levels, AQI, water class from recorded readings,
                                        print them as line protocol (or --format csv)
  envgate hash-password [-cost N]       print the bcrypt hash of a password (stdin), for
                                        basic_auth_users of gateway.web_config_file
  envgate tail [-c FILE] [--device D] [--site S] [--quantity Q] [--user U --ca FILE]
                                        print a running gateway's readings as they arrive
  envgate hj212 decode|encode|serve    check and explain HJ 212 packets, frame segments,
                                        or play the platform for commissioning
  envgate maint start|stop|list [-c FILE] [--device D] [--kind maintenance|calibration] [--reason TEXT]
                                        put a device of a running gateway in maintenance or
                                        calibration (its readings derive nothing), end it, list them
  envgate version                       print the version

Run "envgate COMMAND -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code: 0 ok, 1 failure,
// 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "ports":
		return cmdPorts(args[1:], stdout, stderr)
	case "probe":
		return cmdProbe(args[1:], stdout, stderr)
	case "scan":
		return cmdScan(args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(args[1:], stdout, stderr)
	case "hash-password":
		return cmdHashPassword(args[1:], os.Stdin, stdout, stderr)
	case "tail":
		return cmdTail(args[1:], stdout, stderr)
	case "hj212":
		return cmdHJ212(args[1:], os.Stdin, stdout, stderr)
	case "maint":
		return cmdMaint(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "envgate %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "envgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}
