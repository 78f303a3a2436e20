package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDocs keeps docs/config.md in step with the code: it documents every key, its
// full example loads, and its sample check output is the golden output.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)

	for _, typ := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[Gateway](), reflect.TypeFor[Buffer](),
		reflect.TypeFor[Sink](), reflect.TypeFor[InfluxDB](), reflect.TypeFor[MQTTSink](), reflect.TypeFor[RemoteWrite](), reflect.TypeFor[Header](), reflect.TypeFor[HJ212Sink](), reflect.TypeFor[HJ212Station](), reflect.TypeFor[HJ212Factor](), reflect.TypeFor[Device](), reflect.TypeFor[Sim](),
		reflect.TypeFor[Bus](), reflect.TypeFor[SerialPort](), reflect.TypeFor[TCPEndpoint](),
		reflect.TypeFor[ModbusDevice](), reflect.TypeFor[ModbusPoint](), reflect.TypeFor[MQTT](), reflect.TypeFor[MQTTTLS](),
		reflect.TypeFor[Subscription](), reflect.TypeFor[Field](), reflect.TypeFor[TimeSpec](), reflect.TypeFor[PMSensor](),
		reflect.TypeFor[DutyCycle](), reflect.TypeFor[Noise](), reflect.TypeFor[NoiseSite](),
		reflect.TypeFor[Air](), reflect.TypeFor[AirSite](), reflect.TypeFor[Water](), reflect.TypeFor[WaterSection](),
		reflect.TypeFor[Screening](), reflect.TypeFor[ScreeningChannel](), reflect.TypeFor[ScreeningDrift](),
		reflect.TypeFor[HJ212Listener](), reflect.TypeFor[HJ212Serial](), reflect.TypeFor[HJ212Station](), reflect.TypeFor[HJ212Factor]()} {
		for _, key := range fieldsOf(typ).names {
			if !strings.Contains(doc, "| `"+key+"`") && !strings.Contains(doc, key+":") {
				t.Errorf("docs/config.md does not document %s key %q", typ.Name(), key)
			}
		}
	}

	example := section(t, doc, "## Full example", "```yaml\n", "```\n")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVGATE_INFLUX_TOKEN_FILE", tokenFile)
	t.Setenv("ENVGATE_MQTT_PASSWORD_FILE", tokenFile)
	t.Setenv("INFLUX_URL", "http://127.0.0.1:8086")
	if _, err := Parse([]byte(example), "example.yaml"); err != nil {
		t.Errorf("docs/config.md full example:\n%s", errLines(err))
	}

	output := section(t, doc, "$ envgate check -c broken.yaml\n", "", "```\n")
	want, err := os.ReadFile("testdata/broken/want.err")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(output, "broken.yaml: ", ""); got != string(want) {
		t.Errorf("docs/config.md sample output:\n%s\nwant (testdata/broken/want.err):\n%s", got, want)
	}
	input, err := os.ReadFile("testdata/broken/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc, "```yaml\n"+string(input)+"```\n") {
		t.Error("docs/config.md does not show testdata/broken/config.yaml verbatim")
	}

	// Each line of "Other messages" is a line of the golden case it names.
	cases := map[string]string{"empty": "empty", "list": "not-mapping", "syntax": "syntax", "types": "types",
		"bus": "modbus-bus", "points": "modbus-points", "profile": "modbus-profile", "mqtt": "mqtt", "pm": "pm"}
	for line := range strings.Lines(section(t, doc, "Other messages:", "```\n", "```\n")) {
		file, msg, _ := strings.Cut(line, ".yaml: ")
		want, err := os.ReadFile(filepath.Join("testdata", cases[file], "want.err"))
		if err != nil || cases[file] == "" || !strings.Contains("\n"+string(want), "\n"+msg) {
			t.Errorf("docs/config.md, other messages: %q is not in testdata/%s/want.err", line, cases[file])
		}
	}
}

// section returns the text of doc after the heading, between start and end.
func section(t *testing.T, doc, heading, start, end string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, heading)
	if ok {
		_, rest, ok = strings.Cut(rest, start)
	}
	if ok {
		rest, _, ok = strings.Cut(rest, end)
	}
	if !ok {
		t.Fatalf("docs/config.md: no %q section", heading)
	}
	return rest
}
