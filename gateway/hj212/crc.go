package hj212

// CRC returns the checksum HJ 212-2017 Appendix A defines over a data segment (the
// characters between the length and the CRC field, nothing else). It is a 16-bit
// register preset to 0xFFFF with the reflected polynomial 0xA001, but each byte is
// folded in after the register's high byte is shifted down, unlike CRC-16/MODBUS
// which XORs the byte into the low byte: the two give different values for the same
// text (docs/hj212.md, "CRC"). The standard's example segment gives 0x1C80.
func CRC(segment []byte) uint16 {
	reg := uint16(0xFFFF)
	for _, b := range segment {
		reg = (reg >> 8) ^ uint16(b)
		for range 8 {
			lsb := reg & 1
			reg >>= 1
			if lsb != 0 {
				reg ^= 0xA001
			}
		}
	}
	return reg
}

// appendCRC appends c as four upper-case hexadecimal digits, high byte first.
func appendCRC(dst []byte, c uint16) []byte {
	const hex = "0123456789ABCDEF"
	return append(dst, hex[c>>12], hex[c>>8&0xF], hex[c>>4&0xF], hex[c&0xF])
}

// parseCRC reads four hexadecimal digits of either case.
func parseCRC(b []byte) (uint16, bool) {
	if len(b) != 4 {
		return 0, false
	}
	var c uint16
	for _, d := range b {
		var v byte
		switch {
		case d >= '0' && d <= '9':
			v = d - '0'
		case d >= 'A' && d <= 'F':
			v = d - 'A' + 10
		case d >= 'a' && d <= 'f':
			v = d - 'a' + 10
		default:
			return 0, false
		}
		c = c<<4 | uint16(v)
	}
	return c, true
}
