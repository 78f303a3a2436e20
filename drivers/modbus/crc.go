package modbus

// crcTable holds CRC-16/MODBUS of every byte value: reflected polynomial 0xA001 (0x8005
// bit-reversed), Modbus over Serial Line V1.02 §6.2.2 and appendix B.
var crcTable = makeCRCTable()

func makeCRCTable() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}

// CRC returns the CRC-16/MODBUS of b: initial value 0xFFFF, reflected polynomial
// 0xA001, no final XOR. On the wire it follows the frame low byte first (see AppendCRC).
// CRC([]byte("123456789")) is 0x4B37.
func CRC(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc = crc>>8 ^ crcTable[byte(crc)^c]
	}
	return crc
}

// AppendCRC appends the CRC of frame to it, low byte first, and returns the result: the
// RTU ADU ready to send.
func AppendCRC(frame []byte) []byte {
	c := CRC(frame)
	return append(frame, byte(c), byte(c>>8))
}

// checkCRC reports whether adu (a whole RTU frame, CRC included) carries a correct CRC.
func checkCRC(adu []byte) bool {
	n := len(adu)
	if n < 3 {
		return false
	}
	return CRC(adu[:n-2]) == uint16(adu[n-2])|uint16(adu[n-1])<<8
}
