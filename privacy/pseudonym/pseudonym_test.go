package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var secret = []byte("0123456789abcdefghijklmnopqrstuvwxyz!@#$")

func TestToken(t *testing.T) {
	k, err := NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	// The token is HMAC-SHA-256 of the id under the key, base64url.
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("17850"))
	want := "tok_" + k.ID() + "_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	if got := k.Token("17850"); got != want || k.Token("17850") != want {
		t.Fatalf("Token = %s, want %s", got, want)
	}
	if KeyID(want) != k.ID() || len(k.ID()) != 8 || KeyID("17850") != "" {
		t.Errorf("key id %q / %q", k.ID(), KeyID(want))
	}
	other, _ := NewKey(append([]byte("x"), secret...))
	if other.ID() == k.ID() || other.Token("17850") == want {
		t.Error("two keys made the same token or id")
	}
	if k.Clone().Token("17850") != want {
		t.Error("clone differs")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, mode)
		os.Chmod(p, mode)
		return p
	}
	raw := write("raw", secret, 0o600)
	hexKey := write("hex", []byte(hex.EncodeToString(secret)+"\n"), 0o600)
	b64 := write("b64", []byte(base64.StdEncoding.EncodeToString(secret)), 0o600)
	k1, err1 := LoadKeyFile(raw)
	k2, err2 := LoadKeyFile(hexKey)
	k3, err3 := LoadKeyFile(b64)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	if k1.ID() != k2.ID() || k2.ID() != k3.ID() {
		t.Error("the same key in three encodings gave different ids")
	}
	for name, tc := range map[string]struct {
		path string
		msg  string
	}{
		"missing":        {filepath.Join(dir, "nope"), "no such file"},
		"short":          {write("short", []byte("too short"), 0o600), "at least 32"},
		"world-readable": {write("open", secret, 0o644), "chmod 600"},
		"low entropy":    {write("aaaa", []byte(strings.Repeat("ab", 20)), 0o600), "does not look random"},
	} {
		_, err := LoadKeyFile(tc.path)
		if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", name, err)
		}
	}
	env := map[string]string{"VEIL_KEY": hex.EncodeToString(secret)}
	k4, err := LoadKeyEnv("VEIL_KEY", func(n string) string { return env[n] })
	if err != nil || k4.ID() != k1.ID() {
		t.Errorf("env key: %v", err)
	}
	if _, err := LoadKeyEnv("UNSET", func(string) string { return "" }); !errors.Is(err, ErrKey) {
		t.Errorf("unset env: %v", err)
	}
}
