package reading

import "strings"

// HealthDevice is the device name of the gateway's own health readings (the quantities
// of domain Health). Together with those quantities it is reserved for the gateway: a
// source that could name it would overwrite the gateway's health in /metrics and
// InfluxDB, and hide data loss behind a publisher's buffer_dropped 0.
const HealthDevice = "gateway"

// IsHealthQuantity reports whether name is one of the gateway's own health quantities
// (buffer_bytes, buffer_unsent, buffer_dropped, ..., uptime).
func IsHealthQuantity(name string) bool {
	q, ok := Lookup(name)
	return ok && q.Domain == Health
}

// IsReservedDevice reports whether name is the gateway's own device name, in any
// letter case ("Gateway" would pass for it on a dashboard).
func IsReservedDevice(name string) bool {
	return strings.EqualFold(name, HealthDevice)
}

// Reserved reports whether a reading of quantity from device is reserved for the
// gateway's own health: device is HealthDevice (in any case) or quantity is a health
// quantity. No source may produce such a reading; only the gateway's health poller does.
func Reserved(device, quantity string) bool {
	return IsReservedDevice(device) || IsHealthQuantity(quantity)
}
