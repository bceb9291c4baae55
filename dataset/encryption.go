package dataset

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Client-side envelope encryption is configured here, where URLOptions and
// manifests name it; the encrypting store wrapper is dataset/crypt.

// EncryptionScheme names the format in manifests.
const EncryptionScheme = "veil-envelope-aes256gcm-64k"

// Encryption configures client-side envelope encryption of a store.
type Encryption struct {
	// KeyID names the KEK new objects are written with ("" reads only).
	KeyID string
	// Keys returns the 32-byte KEK of a key id (for reading objects
	// written with older keys too).
	Keys func(id string) ([]byte, error)
}

// KeyDir returns a key source that reads KEKs from files named ID.key in
// dir: 32 raw bytes, 64 hex digits or base64 of 32 bytes. A key file that
// other users can read is refused.
func KeyDir(dir string) func(id string) ([]byte, error) {
	return func(id string) ([]byte, error) {
		if id == "" || strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") {
			return nil, fmt.Errorf("%w: key id %q", ErrBadURL, id)
		}
		p := filepath.Join(dir, id+".key")
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: encryption key %s: %v", ErrBadURL, id, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%w: encryption key file %s is readable by other users (mode %04o); run chmod 600 %s", ErrInsecure, p, st.Mode().Perm(), p)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: encryption key %s: %v", ErrBadURL, id, err)
		}
		if len(raw) == 32 {
			return raw, nil
		}
		t := strings.TrimSpace(string(raw))
		if b, err := hex.DecodeString(t); err == nil && len(b) == 32 {
			return b, nil
		}
		if b, err := base64.StdEncoding.DecodeString(t); err == nil && len(b) == 32 {
			return b, nil
		}
		return nil, fmt.Errorf("%w: encryption key file %s must hold 32 bytes (raw, 64 hex digits or base64)", ErrBadURL, p)
	}
}
