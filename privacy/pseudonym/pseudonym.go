// Package pseudonym turns direct identifiers into pseudonymous tokens:
// tok_<keyid>_<base64url(HMAC-SHA-256(key, id))>. The key is held outside
// the data, read from a file or an environment variable (never from a
// configuration file), and addressed by a key id derived from it, so a token
// says which key made it without revealing the key.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
)

// ErrKey is returned for a missing, short, weak or exposed key.
var ErrKey = errors.New("unusable pseudonymization key")

// MinKeyBytes is the shortest key accepted.
const MinKeyBytes = 32

// Key is an HMAC key with its id. It is not safe for concurrent use; Clone
// it per goroutine.
type Key struct {
	id     string
	secret []byte
	mac    hash.Hash
}

// NewKey returns the key for secret bytes, which must be at least 32 bytes
// and not obviously low-entropy.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) < MinKeyBytes {
		return nil, fmt.Errorf("%w: %d bytes; at least %d random bytes are needed (for example: head -c 32 /dev/urandom > key)", ErrKey, len(secret), MinKeyBytes)
	}
	distinct := map[byte]bool{}
	for _, b := range secret {
		distinct[b] = true
	}
	if len(distinct) < 12 {
		return nil, fmt.Errorf("%w: only %d distinct byte values in %d bytes; the key does not look random", ErrKey, len(distinct), len(secret))
	}
	sum := sha256.Sum256(append([]byte("veil-key-id\x00"), secret...))
	k := &Key{id: hex.EncodeToString(sum[:4]), secret: append([]byte(nil), secret...)}
	k.mac = hmac.New(sha256.New, k.secret)
	return k, nil
}

// decodeSecret accepts raw bytes, or hex or base64 text of them.
func decodeSecret(data []byte) []byte {
	text := strings.TrimSpace(string(data))
	if len(text) >= 2*MinKeyBytes && len(text)%2 == 0 {
		if b, err := hex.DecodeString(text); err == nil {
			return b
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil && len(b) >= MinKeyBytes {
			return b
		}
	}
	return data
}

// LoadKeyFile reads a key file: raw bytes, or hex or base64 text. The file
// must not be readable by others (mode o+r), since the key re-identifies
// every subject of every dataset it made.
func LoadKeyFile(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("%w: %s is readable by every user (mode %04o); run chmod 600 %s", ErrKey, path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	k, err := NewKey(decodeSecret(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadKeyEnv reads a key from an environment variable (hex or base64 text).
func LoadKeyEnv(name string, getenv func(string) string) (*Key, error) {
	v := getenv(name)
	if v == "" {
		return nil, fmt.Errorf("%w: environment variable %s is not set", ErrKey, name)
	}
	k, err := NewKey(decodeSecret([]byte(v)))
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", name, err)
	}
	return k, nil
}

// ID returns the key id: 8 hex digits of SHA-256 over a label and the key.
func (k *Key) ID() string { return k.id }

// Clone returns a copy for another goroutine.
func (k *Key) Clone() *Key {
	c := *k
	c.mac = hmac.New(sha256.New, k.secret)
	return &c
}

// Token returns the pseudonymous token of a direct identifier.
func (k *Key) Token(id string) string {
	k.mac.Reset()
	k.mac.Write([]byte(id))
	var sum [sha256.Size]byte
	return "tok_" + k.id + "_" + base64.RawURLEncoding.EncodeToString(k.mac.Sum(sum[:0]))
}

// KeyID returns the key id a token was made with, or "" if s is not a
// token.
func KeyID(s string) string {
	rest, ok := strings.CutPrefix(s, "tok_")
	if !ok {
		return ""
	}
	id, payload, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 8 || len(payload) != 43 {
		return ""
	}
	return id
}
