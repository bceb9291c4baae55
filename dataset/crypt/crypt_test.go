package crypt_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/veil-privacy/veil/dataset"
	"github.com/veil-privacy/veil/dataset/crypt"
	"github.com/veil-privacy/veil/dataset/s3"
	"github.com/veil-privacy/veil/dataset/storetest"
)

func keyring(keys map[string][]byte) func(string) ([]byte, error) {
	return func(id string) ([]byte, error) {
		if k, ok := keys[id]; ok {
			return k, nil
		}
		return nil, errors.New("unknown key")
	}
}

// The encrypted store passes the store conformance suite: writes are
// encrypted, reads (whole, ranged, across segment edges) decrypted.
func TestEncryptedStoreConformance(t *testing.T) {
	keys := keyring(map[string][]byte{"k1": bytes.Repeat([]byte{7}, 32)})
	storetest.Run(t, func(t *testing.T) dataset.Store {
		s, err := crypt.New(dataset.NewMemStore("enc"), dataset.Encryption{KeyID: "k1", Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{})
}

func TestEnvelopeEncryption(t *testing.T) {
	ctx := context.Background()
	inner := dataset.NewMemStore("m")
	keys := map[string][]byte{"k1": bytes.Repeat([]byte{1}, 32), "k2": bytes.Repeat([]byte{2}, 32)}
	s, err := crypt.New(inner, dataset.Encryption{KeyID: "k1", Keys: keyring(keys)})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, size := range []int{0, 1, 65535, 65536, 65537, 3*65536 + 17} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(r.IntN(256))
		}
		if err := dataset.PutBytes(ctx, s, "f", data); err != nil {
			t.Fatal(err)
		}
		stored, _ := dataset.ReadAll(ctx, inner, "f")
		if size > 16 && bytes.Contains(stored, data[:16]) {
			t.Errorf("%d bytes: plaintext is visible in the stored object", size)
		}
		got, err := dataset.ReadAll(ctx, s, "f")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: round trip gave %d bytes, %v", size, len(got), err)
		}
		if size > 70000 {
			obj, _ := s.Open(ctx, "f")
			part := make([]byte, 100)
			if _, err := obj.ReadAt(part, 65500); err != nil || !bytes.Equal(part, data[65500:65600]) {
				t.Errorf("ranged read across a segment edge: %v", err)
			}
			obj.Close()
		}
	}
	// A reader with only the old key still reads objects written with it;
	// a new key id writes new objects.
	s2, _ := crypt.New(inner, dataset.Encryption{KeyID: "k2", Keys: keyring(keys)})
	dataset.PutBytes(ctx, s2, "g", []byte("written with k2"))
	if got, err := dataset.ReadAll(ctx, s, "g"); err != nil || string(got) != "written with k2" {
		t.Errorf("key rotation: %q %v", got, err)
	}
	// Unencrypted objects are read as they are.
	dataset.PutBytes(ctx, inner, "plain", []byte("PAR1 not encrypted"))
	if got, _ := dataset.ReadAll(ctx, s, "plain"); string(got) != "PAR1 not encrypted" {
		t.Errorf("plain object: %q", got)
	}
	// Tampering: a flipped bit, a cut-off tail, a missing key.
	stored, _ := dataset.ReadAll(ctx, inner, "f")
	for name, bad := range map[string][]byte{
		"flipped bit": append(append([]byte{}, stored[:200]...), append([]byte{stored[200] ^ 1}, stored[201:]...)...),
		"cut short":   stored[:len(stored)-65552],
		"cut tag":     stored[:len(stored)-3],
	} {
		dataset.PutBytes(ctx, inner, "bad", bad)
		if _, err := dataset.ReadAll(ctx, s, "bad"); !errors.Is(err, crypt.ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	only2, _ := crypt.New(inner, dataset.Encryption{Keys: keyring(map[string][]byte{"k2": keys["k2"]})})
	if _, err := dataset.ReadAll(ctx, only2, "f"); !errors.Is(err, crypt.ErrDecrypt) {
		t.Errorf("missing key: %v", err)
	}
	var sink bytes.Buffer
	obj, _ := s.Open(ctx, "f")
	io.Copy(&sink, io.NewSectionReader(obj, 0, obj.Size()))
	if sink.Len() != int(obj.Size()) {
		t.Errorf("section read %d of %d", sink.Len(), obj.Size())
	}
}

// The same on a real S3 server: ranged GETs of ciphertext, multipart
// uploads of encrypted streams.
func TestEncryptedS3Conformance(t *testing.T) {
	keys := keyring(map[string][]byte{"k1": bytes.Repeat([]byte{9}, 32)})
	storetest.Run(t, func(t *testing.T) dataset.Store {
		s3, err := s3.New(context.Background(), storetest.S3Bucket(t, "enc"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := crypt.New(s3, dataset.Encryption{KeyID: "k1", Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{})
}

// BenchmarkEnvelope reads and writes a 32 MiB object through the in-memory
// store, plain and encrypted, side by side: the cost of AES-256-GCM.
func BenchmarkEnvelope(b *testing.B) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 2<<20)
	keys := keyring(map[string][]byte{"k": bytes.Repeat([]byte{3}, 32)})
	for _, mode := range []string{"plain", "encrypted"} {
		var s dataset.Store = dataset.NewMemStore("b")
		if mode == "encrypted" {
			s, _ = crypt.New(s, dataset.Encryption{KeyID: "k", Keys: keys})
		}
		b.Run(mode+"/write", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := dataset.PutBytes(ctx, s, "o", data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode+"/read", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := dataset.ReadAll(ctx, s, "o"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
