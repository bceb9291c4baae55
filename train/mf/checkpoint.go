package mf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// ErrCheckpoint reports a checkpoint that cannot be resumed from.
var ErrCheckpoint = errors.New("invalid checkpoint")

// Checkpoint is the state of a training run after some steps: the item
// factors, the optimizer and how far the privacy plan has run. Everything
// in it is computed from noisy sums only, so it is covered by the run's
// accounting like the model itself.
type Checkpoint struct {
	RunID     string  `json:"run_id"`
	Plan      Plan    `json:"plan"`
	Config    string  `json:"config"` // fingerprint of the settings that shape the model
	Items     string  `json:"items"`  // fingerprint of the item list
	Dim       int     `json:"dim"`
	NItems    int     `json:"n_items"`
	StepsDone int     `json:"steps_done"`
	AdamT     int     `json:"adam_t"`
	Seen      int64   `json:"subject_gradients"`
	Clipped   int64   `json:"clipped"`
	NormSum   float64 `json:"norm_sum"`
	Seconds   float64 `json:"seconds"`
	// ItemIDs and NoisySubjects are the run's released item universe and
	// noisy subject count, so that a resumed run does not release them again.
	ItemIDs       []string `json:"item_ids,omitempty"`
	NoisySubjects float64  `json:"noisy_subjects,omitempty"`

	// P is the model, M1 and M2 the optimizer's moments, Prior the rows
	// training started from and Released the sum of the released item
	// rows of the update so far (the shrinkage toward the prior needs both).
	P, M1, M2, Prior, Released []float64 `json:"-"`
}

// checkpointMagic names the format; VEILCKP1 (three arrays, no prior) is
// not resumed.
const checkpointMagic = "VEILCKP2"

// Marshal encodes the checkpoint: magic, a JSON header, the five arrays
// as little-endian float64 and a SHA-256 of everything before it.
func (c *Checkpoint) Marshal() []byte {
	h, _ := json.Marshal(c)
	arrays := [][]float64{c.P, c.M1, c.M2, c.Prior, c.Released}
	n := len(checkpointMagic) + 4 + len(h) + sha256.Size
	for _, a := range arrays {
		n += 8 * len(a)
	}
	// One buffer of the final size, filled word by word: encoding/binary's
	// Write per value went through reflection and an allocation each.
	b := make([]byte, 0, n)
	b = append(b, checkpointMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h)))
	b = append(b, h...)
	for _, a := range arrays {
		for _, v := range a {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// UnmarshalCheckpoint decodes and checks a checkpoint.
func UnmarshalCheckpoint(data []byte) (*Checkpoint, error) {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrCheckpoint, fmt.Sprintf(f, a...)) }
	if len(data) < len(checkpointMagic)+4+sha256.Size || string(data[:len(checkpointMagic)]) != checkpointMagic {
		return nil, bad("not a veil checkpoint")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, bad("checksum mismatch (truncated or altered)")
	}
	body = body[len(checkpointMagic):]
	n := binary.LittleEndian.Uint32(body)
	body = body[4:]
	if uint64(n) > uint64(len(body)) {
		return nil, bad("header of %d bytes in %d", n, len(body))
	}
	c := &Checkpoint{}
	if err := json.Unmarshal(body[:n], c); err != nil {
		return nil, bad("header: %v", err)
	}
	body = body[n:]
	if c.Dim < 1 || c.Dim > 512 || c.NItems < 1 || c.StepsDone < 0 || c.StepsDone > c.Plan.Steps || c.AdamT < 0 {
		return nil, bad("header out of range (dim %d, items %d, step %d of %d)", c.Dim, c.NItems, c.StepsDone, c.Plan.Steps)
	}
	size := uint64(c.NItems) * uint64(c.Dim+1)
	if uint64(len(body)) != 5*8*size {
		return nil, bad("%d bytes of state, want %d", len(body), 5*8*size)
	}
	arr := func() []float64 {
		a := make([]float64, size)
		for i := range a {
			a[i] = math.Float64frombits(binary.LittleEndian.Uint64(body[8*i:]))
		}
		body = body[8*size:]
		return a
	}
	c.P, c.M1, c.M2, c.Prior, c.Released = arr(), arr(), arr(), arr(), arr()
	return c, nil
}

// fingerprint hashes the settings that shape the trained factors, so that
// a checkpoint is only resumed by the same training.
func (c Config) fingerprint() string {
	k := c
	k.Workers, k.source, k.stepHook = 0, nil, nil
	s := sha256.Sum256(fmt.Appendf(nil, "%+v", k))
	return fmt.Sprintf("%x", s[:12])
}

func itemsFingerprint(items []string) string {
	h := sha256.New()
	for _, it := range items {
		h.Write([]byte(it))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:12])
}
