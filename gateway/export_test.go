package gateway

// SetQueue makes the writer, the health poller and Healthy of p call q instead of
// Config.Queue (tests wrap the real queue to make its calls hang). Call it before Run.
func SetQueue(p *Pipeline, q queue) { p.queue = q }
