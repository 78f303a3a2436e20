package config

import "slices"

// DeviceGroup is the devices of one source, as the status page shows them.
type DeviceGroup struct {
	Name string // the bus's or MQTT source's name, or the kind's: "simulated devices"
	// Kind is "sim", "modbus", "mqtt", "pm" or "hj212".
	Kind    string
	Devices []NamedDevice // in the order of the file
}

// NamedDevice is a device name the file gives, and its site after defaults ("" for an
// MQTT subscription whose topic gives the site).
type NamedDevice struct {
	Name string
	Site string
}

// DeviceGroups returns the devices the file names, by source: the simulated devices,
// each Modbus bus, each MQTT source (with the devices its subscriptions name; an MQTT
// source appears even when its topics name all its devices), the particulate sensors,
// and the stations of the HJ 212 listeners. Groups of the first, fourth and fifth kind
// appear only when they have devices.
func (c *Config) DeviceGroups() []DeviceGroup {
	var gs []DeviceGroup
	if len(c.Devices) > 0 {
		g := DeviceGroup{Name: "simulated devices", Kind: "sim"}
		for _, d := range c.Devices {
			g.Devices = append(g.Devices, NamedDevice{d.Name, d.Site})
		}
		gs = append(gs, g)
	}
	for _, b := range c.Buses {
		g := DeviceGroup{Name: b.Name, Kind: "modbus"}
		for _, d := range b.Devices {
			g.Devices = append(g.Devices, NamedDevice{d.Name, d.Site})
		}
		gs = append(gs, g)
	}
	for _, m := range c.MQTT {
		g := DeviceGroup{Name: m.Name, Kind: "mqtt"}
		for _, s := range m.Subscriptions {
			if s.Device != "" {
				g.Devices = append(g.Devices, NamedDevice{s.Device, s.Site})
			}
		}
		gs = append(gs, g)
	}
	if len(c.PM) > 0 {
		g := DeviceGroup{Name: "particulate sensors", Kind: "pm"}
		for _, s := range c.PM {
			g.Devices = append(g.Devices, NamedDevice{s.Name, s.Site})
		}
		gs = append(gs, g)
	}
	g := DeviceGroup{Name: "HJ 212 analyzers", Kind: "hj212"}
	for _, l := range c.HJ212 {
		for _, s := range l.Stations {
			g.Devices = append(g.Devices, NamedDevice{s.Device, s.Site})
		}
	}
	if len(g.Devices) > 0 {
		gs = append(gs, g)
	}
	return gs
}

// DeviceNames returns every device name of DeviceGroups, sorted, once each, without "".
// Devices known only from MQTT topics are not among them.
func (c *Config) DeviceNames() []string {
	var names []string
	for _, g := range c.DeviceGroups() {
		for _, d := range g.Devices {
			if d.Name != "" {
				names = append(names, d.Name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
