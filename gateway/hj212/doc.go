// Package hj212 is the HJ 212-2017 packet codec: the frame (`##`, length, data
// segment, CRC, CR LF), the data segment's fields (QN, ST, CN, PW, MN, Flag, PNUM,
// PNO, CP), the command parameters inside CP, the Appendix A checksum, splitting a
// long record into numbered packets, and a reader that finds packets in a byte
// stream. It is pure (the standard library and gateway/reading only) so that the uplink sink, the analyzer
// source and the `envgate hj212` tool share one reading of the standard.
//
// The facts it encodes, with their sources, are in docs/hj212.md; section numbers
// there follow the standard's tables.
package hj212
