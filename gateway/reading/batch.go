package reading

// Batch is readings delivered together by a source that must know when they are durable:
// an MQTT message is acknowledged to its broker only after its readings are fsynced, so
// that nothing a broker handed over can be lost.
type Batch struct {
	Readings []Reading
	// Durable, if set, is called exactly once by the pipeline's writer: with nil after
	// the fsync that covers every reading of the batch, or with the reason they are not
	// durable (the disk failed and they wait in memory). It must not block.
	Durable func(err error)
}
