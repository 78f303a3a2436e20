package buffer

// kill drops q the way a killed process would: nothing synced, no cursor persisted, and
// the lock released (by the kernel, for a real process), so the same test can reopen
// the directory.
func (q *Queue) kill() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	if q.active != nil {
		q.active.Close()
		q.active = nil
	}
	for _, s := range q.toSync {
		s.f.Close()
	}
	q.toSync = nil
	close(q.notify)
	q.unlock()
}
