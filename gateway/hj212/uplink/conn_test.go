package uplink

import (
	"net"
	"testing"
)

// The parts of a split record share a QN and their answers carry no PNO: when part k
// was sent twice (a timeout) and both sends are answered, the second answer is part
// k's, not part k+1's.
func TestHJ212LateAnswerNotTakenForNextPart(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	c := newConn(a)
	const qn, mn = "20260315221500123", noiseMN
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	c.expect(qn, mn)                     // part k
	k := c.expect(qn, mn)                // part k again, after a timeout
	if !c.answer(qn, mn) || !closed(k) { // the answer to its first send
		t.Fatal("part k not answered")
	}
	next := c.expect(qn, mn) // part k+1
	c.answer(qn, mn)         // the answer to part k's second send
	if closed(next) {
		t.Fatal("part k+1 released by the late answer to part k")
	}
	if !c.answer(qn, mn) || !closed(next) {
		t.Fatal("part k+1 not released by its answer")
	}
	if c.answer(qn, mn) {
		t.Error("an answer to no send owed one: true")
	}
	// A packet given up on: its sends' answers come late, then the next packet's.
	c.expect(qn, mn)
	c.forget(qn, mn)
	next = c.expect(qn, mn)
	c.answer(qn, mn)
	if closed(next) {
		t.Fatal("a packet released by the late answer to one given up on")
	}
	c.answer(qn, mn)
	if !closed(next) {
		t.Fatal("packet not released by its answer")
	}
}
