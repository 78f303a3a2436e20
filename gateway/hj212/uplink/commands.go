package uplink

import (
	"context"
	"strconv"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/reading"
)

// command is a packet the platform sent that is not an answer.
type command struct {
	p     hj212.Packet
	frame []byte
	crc   bool // its CRC was wrong: answered with QnRtn 9
}

// historyTimeout bounds the answer to one history request.
const historyTimeout = 2 * time.Minute

// handle answers one platform command on c (docs/hj212.md, "Commands"): 9011 with
// QnRtn, then, for a request it carries out, the data it asks for and 9012 with ExeRtn.
// ctx is done when c fails or closes. A failure to send closes c: the rest of the
// answer is dropped with it.
func (s *Sink) handle(ctx context.Context, c *conn, cmd command) {
	p := cmd.p
	reply := func(cn, cp string) {
		if c.isDone() {
			return
		}
		if err := s.sendPacket(c, hj212.Packet{QN: p.QN, ST: hj212.STInteraction, CN: cn, PW: p.PW, MN: p.MN, Flag: hj212.Version2017, CP: cp}); err != nil {
			s.log.Debug("platform command: answer not sent", "cn", p.CN, "qn", p.QN, "err", err)
		}
	}
	qnRtn := func(v string) {
		if v != hj212.QnReady {
			s.refused.Add(1)
			s.log.Info("platform command refused", "cn", p.CN, "qn", p.QN, "mn", p.MN, "qn_rtn", v)
		}
		reply(hj212.CNRequestAnswer, "QnRtn="+v)
	}
	exeRtn := func(v string) {
		if v != hj212.ExeOK {
			s.refused.Add(1)
		}
		reply(hj212.CNExecResult, "ExeRtn="+v)
	}
	if cmd.crc {
		qnRtn(hj212.QnBadCRC)
		return
	}
	si := -1
	for i, st := range s.cfg.Stations {
		if st.MN == p.MN {
			si = i
			break
		}
	}
	if si < 0 {
		qnRtn(hj212.QnBadMN)
		return
	}
	st := &s.cfg.Stations[si]
	if p.PW != st.PW {
		qnRtn(hj212.QnBadPW)
		return
	}
	if p.QN == "" {
		qnRtn(hj212.QnBadQN)
		return
	}
	upload := func(cn, cp string) {
		if c.isDone() {
			return
		}
		if err := s.sendPacket(c, hj212.Packet{QN: p.QN, ST: st.ST, CN: cn, PW: st.PW, MN: st.MN, Flag: hj212.Version2017, CP: cp}); err != nil {
			s.log.Debug("platform command: data not sent", "cn", p.CN, "qn", p.QN, "err", err)
		}
	}
	params, perr := hj212.ParseCP(p.CP)
	switch p.CN {
	case hj212.CNGetTime:
		qnRtn(hj212.QnReady)
		upload(hj212.CNGetTime, "SystemTime="+s.cfg.Now().In(s.cfg.Location).Format(hj212.TimeLayout))
		exeRtn(hj212.ExeOK)
	case hj212.CNSetTime:
		// The box's clock is NTP-disciplined: the platform's time is logged, not set.
		qnRtn(hj212.QnReady)
		v, _ := hj212.Param(params, "SystemTime")
		attrs := []any{"qn", p.QN, "system_time", v}
		if t, err := hj212.ParseTime(v, s.cfg.Location); err == nil {
			attrs = append(attrs, "offset", t.Sub(s.cfg.Now()).Round(time.Second))
		}
		s.log.Info("platform set time refused: the clock is kept by NTP", attrs...)
		exeRtn(hj212.ExeCondition)
	case hj212.CNGetRtdInterval:
		qnRtn(hj212.QnReady)
		upload(hj212.CNGetRtdInterval, "RtdInterval="+strconv.Itoa(int(s.rtdInterval(si)/time.Second)))
		exeRtn(hj212.ExeOK)
	case hj212.CNSetRtdInterval:
		qnRtn(hj212.QnReady)
		v, _ := hj212.Param(params, "RtdInterval")
		n, err := strconv.Atoi(v)
		d := time.Duration(n) * time.Second
		if perr != nil || err != nil || d < MinRtdInterval || d > MaxRtdInterval {
			exeRtn(hj212.ExeCondition)
			return
		}
		s.cmu.Lock()
		s.rtd[si] = d
		s.cmu.Unlock()
		s.log.Info("platform set the real-time interval", "mn", st.MN, "rtd_interval", d)
		exeRtn(hj212.ExeOK)
	case hj212.CNMinute, hj212.CNHourly, hj212.CNDaily:
		b, _ := hj212.Param(params, "BeginTime")
		e, _ := hj212.Param(params, "EndTime")
		from, err1 := hj212.ParseTime(b, s.cfg.Location)
		to, err2 := hj212.ParseTime(e, s.cfg.Location)
		if perr != nil || err1 != nil || err2 != nil || to.Before(from) {
			qnRtn(hj212.QnReady)
			exeRtn(hj212.ExeCondition)
			return
		}
		qnRtn(hj212.QnReady)
		exeRtn(s.history(ctx, c, si, p, from, to))
	case hj212.CNSetTimeout, hj212.CNTimeCalibration, hj212.CNGetMinInterval, hj212.CNSetMinInterval, hj212.CNSetPassword,
		hj212.CNRealtime, hj212.CNStopRealtime, hj212.CNStatus, hj212.CNStopStatus, hj212.CNRunTimeDaily, hj212.CNPowerOn:
		qnRtn(hj212.QnRefused)
	default:
		qnRtn(hj212.QnBadCN)
	}
}

func (s *Sink) rtdInterval(si int) time.Duration {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.rtd[si]
}

// history sends station si's records of p.CN whose DataTime is in [from, to], from the
// readings the buffer still holds, with the request's QN and without asking for
// answers; it returns the ExeRtn: 1, 100 when there is none, 2 when the buffer could
// not be read or a packet not sent. It stops when ctx (c's) is done.
func (s *Sink) history(ctx context.Context, c *conn, si int, p hj212.Packet, from, to time.Time) string {
	h := s.historyHook.Load()
	if h == nil {
		return hj212.ExeNoData
	}
	read := *h
	st := &s.cfg.Stations[si]
	var keep []reading.Reading
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	// A daily record's values are stamped up to a day after its DataTime (a night, the
	// Ldn): read a day further than asked for.
	err := read(ctx, from, to.Add(24*time.Hour), func(rs []reading.Reading) error {
		for _, r := range rs {
			if !st.matches(r) {
				continue
			}
			if f, ok := st.classify(r.Quantity); ok && f.cn == p.CN {
				keep = append(keep, r)
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("history request: buffer read failed", "err", err)
		return hj212.ExeFailed
	}
	recs, _ := s.build(keep, nil, nil, si) // no real-time data: no RtdInterval to bucket it by
	sent := 0
	for _, rec := range recs {
		if rec.dataTime.Before(from) || rec.dataTime.After(to) {
			continue
		}
		pkts, err := s.packets(rec, p.QN)
		if err != nil {
			continue
		}
		for _, pk := range pkts {
			pk.Flag &^= hj212.FlagAck
			if err := s.sendPacket(c, pk); err != nil {
				s.log.Warn("history request: record not sent", "cn", p.CN, "qn", p.QN, "err", err)
				return hj212.ExeFailed
			}
			sent++
		}
	}
	if sent == 0 {
		return hj212.ExeNoData
	}
	return hj212.ExeOK
}
