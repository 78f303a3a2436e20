package mqttsub

// The broker's in-flight window and the pipeline's group commit (issue 14).
//
// The pipeline's writer may hold a batch's Durable call — and so its PUBACK — for its
// ack delay, so that one fsync covers many messages. An MQTT 3.1.1 broker sends a
// client at most its in-flight window of unacknowledged QoS 1 messages (mosquitto:
// max_inflight_messages, default 20) and then waits for PUBACKs. Held for the ack delay,
// a full window would throttle the stream to one window per delay; so the subscriber
// marks the batch that fills the window (reading.Batch.WindowFull), and the writer syncs
// it, with everything before it, at once. Config.MaxInflight must not exceed the
// broker's window: if it does, the window fills unnoticed and the stream runs at one
// window per ack delay until the delay ends; if it is smaller, the writer only syncs
// more often than it needs to.

// DefaultMaxInflight is Config.MaxInflight's default: mosquitto's max_inflight_messages
// default (mosquitto.conf(5)).
const DefaultMaxInflight = 20

// windowFull reports whether the broker's window is full once the message being sent
// to the pipeline is counted: the QoS 1 messages of the current connection received
// and not yet acknowledged (queued here, including the one being sent, or still in
// the inbox) reach MaxInflight. Run's goroutine only.
func (r *runner) windowFull() bool {
	return r.ackable+int(r.inboxAcks.Load()) >= r.s.cfg.MaxInflight
}
