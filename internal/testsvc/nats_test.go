package testsvc

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// A 3-node NATS cluster carries MQTT QoS 1 messages between nodes, and keeps doing so
// while one node is killed (SIGKILL) and after it comes back: the broker cluster that
// issue 15's fleet tests run against.
func TestNATSClusterMQTTSurvivesANode(t *testing.T) {
	c := StartNATSCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	var mu sync.Mutex
	got := map[string]int{}
	o := clientOptions(n3.MQTTURL, "natssub", nil).SetCleanSession(false)
	sub := mqtt.NewClient(o)
	if tok := sub.Connect(); !tok.WaitTimeout(mqttWait) || tok.Error() != nil {
		t.Fatalf("subscriber on %s: connect: %v", n3.Name, tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("fleet/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		got[string(m.Payload())]++
		mu.Unlock()
	}); !tok.WaitTimeout(mqttWait) || tok.Error() != nil {
		t.Fatalf("subscribe on %s: %v", n3.Name, tok.Error())
	}

	publish := func(node *NATSNode, from, to int) {
		t.Helper()
		p := mqtt.NewClient(clientOptions(node.MQTTURL, "natspub-"+node.Name, nil).SetCleanSession(true))
		if tok := p.Connect(); !tok.WaitTimeout(mqttWait) || tok.Error() != nil {
			t.Fatalf("publisher on %s: connect: %v", node.Name, tok.Error())
		}
		defer p.Disconnect(100)
		for i := from; i < to; i++ {
			tok := p.Publish(fmt.Sprintf("fleet/box-%d/noise", i%5), 1, false, strconv.Itoa(i))
			if !tok.WaitTimeout(mqttWait) || tok.Error() != nil {
				t.Fatalf("publish %d on %s: %v", i, node.Name, tok.Error())
			}
		}
	}
	waitAll := func(n int) {
		t.Helper()
		deadline := time.Now().Add(mqttWait)
		for {
			mu.Lock()
			k := len(got)
			mu.Unlock()
			if k >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("subscriber on %s got %d distinct messages of %d", n3.Name, k, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			if got[strconv.Itoa(i)] == 0 {
				t.Fatalf("message %d never arrived", i)
			}
		}
	}

	publish(n1, 0, 50)
	waitAll(50)
	n2.Kill(t)
	c.WaitReady(t)
	publish(n1, 50, 100)
	waitAll(100)
	n2.Start(t)
	c.WaitReady(t)
	publish(n2, 100, 150)
	waitAll(150)
}
