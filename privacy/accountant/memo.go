package accountant

import (
	"math"
	"strconv"
	"strings"
	"sync"
)

// memoBins bounds the loss bins the memo holds (32 MiB of float64s).
const memoBins = 1 << 22

// memo keeps the most recently composed privacy loss distributions, keyed
// by everything they are computed from: the events' parameters in order
// (not their notes), the direction and the interval. A run asks the same
// composition many times before it reads data: calibration evaluates the
// noise it picks last, then the spend (release.Spend, the ledger, the
// charge's breakdown) composes the same events again at the budget's δ,
// and every σ calibration probes composes the same fixed releases. The
// composition does not depend on δ, so reusing it gives bit for bit the
// ε that composing again would. Entries are never written after they
// are stored; callers only read them.
var memo = &pmfMemo{}

type memoEntry struct {
	key string
	p   pmf
}

type pmfMemo struct {
	mu      sync.Mutex
	entries []memoEntry // least recently used first
	bins    int
}

func (m *pmfMemo) get(key string) (pmf, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, e := range m.entries {
		if e.key == key {
			copy(m.entries[i:], m.entries[i+1:])
			m.entries[len(m.entries)-1] = e
			return e.p, true
		}
	}
	return pmf{}, false
}

// put stores p under key, dropping the least recently used entries
// beyond memoBins; a p larger than memoBins alone is not stored.
func (m *pmfMemo) put(key string, p pmf) {
	if len(p.probs) > memoBins {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.key == key {
			return
		}
	}
	m.entries = append(m.entries, memoEntry{key, p})
	m.bins += len(p.probs)
	for m.bins > memoBins {
		m.bins -= len(m.entries[0].p.probs)
		m.entries[0] = memoEntry{}
		m.entries = m.entries[1:]
	}
}

// reset empties the memo (benchmarks measure the work it saves).
func (m *pmfMemo) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries, m.bins = nil, 0
}

// memoKey identifies the PLD of events in direction dir at interval h:
// every parameter that eventPMF and selfCompose read, as exact bits.
func memoKey(dir direction, h float64, events ...Event) string {
	var b strings.Builder
	bits := func(x float64) { b.WriteString(strconv.FormatUint(math.Float64bits(x), 16)); b.WriteByte(',') }
	b.WriteString(strconv.Itoa(int(dir)))
	b.WriteByte('|')
	bits(h)
	for _, e := range events {
		b.WriteByte('|')
		b.WriteString(string(e.Mechanism))
		b.WriteByte(',')
		bits(e.SamplingRate)
		bits(e.NoiseMultiplier)
		bits(e.Sigma)
		bits(e.Scale)
		b.WriteString(strconv.Itoa(e.Sensitivity))
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(e.Count))
	}
	return b.String()
}
