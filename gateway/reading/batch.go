package reading

// Batch is readings a source delivers together: one poll of a device, one MQTT message,
// one work period of a particulate sensor. The pipeline stores a batch's readings in
// one append.
//
// A reading exists either only here (a Modbus register read, a UART frame, a QoS 0
// MQTT message: lose it and it is gone) or also somewhere else that will hand it over
// again if asked (a QoS 1 MQTT message the broker keeps until it is acknowledged). The
// two are treated differently while the disk fails: the buffer holds readings of the
// first kind in memory, within its memory_readings bound, and refuses those of the
// second kind outright, so that a reading with another copy never pushes a reading
// without one out of memory.
type Batch struct {
	Readings []Reading
	// Redeliverable says the readings have another copy: the source can get them again
	// (a QoS 1 message its broker delivers again when it is not acknowledged). A
	// redeliverable batch must have Durable set. While the disk fails the pipeline
	// refuses it at once (Durable gets an error and nothing is kept), and if a sync
	// fails after it was written, the buffer discards it rather than hold it in memory.
	Redeliverable bool
	// Durable, if set, is called exactly once by the pipeline's writer: with nil after
	// the fsync that covers every reading of the batch, or with the reason they are not
	// durable. For a redeliverable batch an error means nothing of it is kept: the
	// source must not acknowledge it and must get it again. For any other batch an
	// error means its readings wait in memory for the disk (or were dropped by the
	// memory bound, which the buffer counts). Durable must not block.
	Durable func(err error)
	// WindowFull says the source can take no more until this batch (or one before it)
	// is durable: its broker's in-flight window is full of unacknowledged messages. The
	// writer then syncs as soon as nothing else is queued, without waiting out its ack
	// delay (docs/design.md §5, group commit for acknowledged sources).
	WindowFull bool
}
