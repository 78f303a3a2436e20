package mqttsub

import (
	"strings"
	"testing"
)

// matchBySplit is plan.match as it was, with strings.Split: the reference for
// TestMatchLevels.
func matchBySplit(p *plan, topic string) (topicIDs, error) {
	ids := topicIDs{site: p.site, device: p.device, quantity: p.quantity}
	segs := strings.Split(topic, "/")
	for i, t := range p.template {
		if t == "#" {
			break
		}
		if i >= len(segs) {
			return ids, malformed(KindTopic, "topic %q has fewer levels than template %q", topic, p.templateText)
		}
		switch t {
		case "+":
		case "{site}":
			ids.site = segs[i]
		case "{device}":
			ids.device = segs[i]
		case "{quantity}":
			ids.quantity = segs[i]
		default:
			if segs[i] != t {
				return ids, malformed(KindTopic, "topic %q does not match template %q: level %d is %q, want %q", topic, p.templateText, i+1, segs[i], t)
			}
		}
	}
	if n := len(p.template); (n == 0 || p.template[n-1] != "#") && len(segs) > n {
		return ids, malformed(KindTopic, "topic %q has more levels than template %q", topic, p.templateText)
	}
	return ids, nil
}

// plan.match walks the topic's levels without splitting it, with the same result as
// with strings.Split: the same names, or the same error, up to the name checks that
// follow the walk (left out here by testing names that pass them).
func TestMatchLevels(t *testing.T) {
	subs := []Subscription{
		esp32, chirpstack, loraNumber, waterLP,
		{Topic: "a/+", Site: "s", Device: "d", Quantity: "la", Format: FormatNumber},
		{Topic: "#", Site: "s", Device: "d", Quantity: "la", Format: FormatNumber},
		{Topic: "x", Site: "s", Device: "d", Quantity: "la", Format: FormatNumber},
		{Topic: "+/#", Template: "{site}/#", Device: "d", Quantity: "la", Format: FormatNumber},
	}
	topics := []string{"", "/", "x", "x/", "/x", "env/a/b/air", "env/a/b/air/", "env/a/b", "env//b/air", "water/s", "water/s/t/u",
		"water", "lora/d/la", "lora/d/la/x", "lora//", "a/b", "a", "a/b/c", "application/7/device/d/event/up",
		"application/7/device/d/event", "application/7/device/d/event/up/x"}
	for _, sub := range subs {
		p, errs := compile(sub, "", DefaultDeviceExpiry)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", sub.Topic, errs)
		}
		for _, topic := range topics {
			want, werr := matchBySplit(p, topic)
			if werr != nil {
				// The name checks after the walk only see names the walk found.
				_, err := p.match(topic)
				if err == nil || err.Error() != werr.Error() {
					t.Errorf("template %q, topic %q: %v, want %v", p.templateText, topic, err, werr)
				}
				continue
			}
			p2 := *p
			p2.hasSite, p2.hasDevice, p2.hasQuantity = false, false, false
			got, err := p2.match(topic)
			if err != nil || got != want {
				t.Errorf("template %q, topic %q: %+v, %v; want %+v", p.templateText, topic, got, err, want)
			}
		}
	}
}
