package crypt

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"path"
	"strings"

	"github.com/veil-privacy/veil/dataset"
)

// ErrDecrypt reports an encrypted object that cannot be decrypted: an
// unknown key id, or ciphertext that was altered or cut short (the GCM tag
// of a segment does not match).
var ErrDecrypt = errors.New("cannot decrypt object")

// Envelope encryption, client side: each object gets a fresh 256-bit data
// key that encrypts it in 64 KiB segments with AES-256-GCM (so ranged
// reads decrypt only the segments they touch), and the data key is stored
// in the object's header, wrapped with AES-256-GCM under a key-encryption
// key (KEK) named by its id. The header is authenticated with every
// segment, and the last segment is marked, so a reordered, altered,
// truncated or extended object fails to decrypt.
const (
	encMagic   = "VEILENC1"
	encSegment = 64 << 10
	encTag     = 16
	encKeyID   = 32 // bytes reserved for the key id in the header
	// encHeader: magic, key id (length byte and 32 bytes), wrap nonce,
	// wrapped data key (32 + tag), segment nonce base.
	encHeader = len(encMagic) + 1 + encKeyID + 12 + 32 + encTag + 12
)

// Store writes objects encrypted and reads encrypted objects
// transparently; objects without the header (written before, or by other
// tools) are read as they are. List and Stat report stored sizes.
type Store struct {
	dataset.Store
	enc dataset.Encryption
}

// New wraps s.
func New(s dataset.Store, enc dataset.Encryption) (*Store, error) {
	if enc.Keys == nil {
		return nil, fmt.Errorf("%w: encryption needs a key source", dataset.ErrBadURL)
	}
	if enc.KeyID != "" {
		if len(enc.KeyID) > encKeyID {
			return nil, fmt.Errorf("%w: key id %q is longer than %d bytes", dataset.ErrBadURL, enc.KeyID, encKeyID)
		}
		k, err := enc.Keys(enc.KeyID)
		if err != nil {
			return nil, err
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("%w: key %s has %d bytes, want 32", dataset.ErrBadURL, enc.KeyID, len(k))
		}
	}
	return &Store{Store: s, enc: enc}, nil
}

// EncryptionKeyID is the key id new objects are written with.
func (s *Store) EncryptionKeyID() string { return s.enc.KeyID }

func gcm(key []byte) cipher.AEAD {
	b, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(b)
	return g
}

func segmentNonce(base []byte, i uint64) []byte {
	n := bytes.Clone(base)
	x := binary.BigEndian.Uint64(n[4:]) ^ i
	binary.BigEndian.PutUint64(n[4:], x)
	return n
}

func segmentAAD(header []byte, i uint64, final bool) []byte {
	aad := append(bytes.Clone(header), 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint64(aad[len(header):], i)
	if final {
		aad[len(aad)-1] = 1
	}
	return aad
}

// plainKey reports whether key is a control file that stays readable
// without keys: manifests, pending markers and chain heads (names starting
// with "_"), which hold checksums and key ids, never subject data.
func plainKey(key string) bool { return strings.HasPrefix(path.Base(key), "_") }

// Put implements dataset.Store: the object is stored encrypted.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	if s.enc.KeyID == "" || plainKey(key) {
		return s.Store.Put(ctx, key, r)
	}
	return s.put(ctx, key, r, s.Store.Put)
}

// PutIfAbsent implements dataset.Store.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader) error {
	if s.enc.KeyID == "" || plainKey(key) {
		return s.Store.PutIfAbsent(ctx, key, r)
	}
	return s.put(ctx, key, r, s.Store.PutIfAbsent)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, put func(context.Context, string, io.Reader) error) error {
	kek, err := s.enc.Keys(s.enc.KeyID)
	if err != nil {
		return err
	}
	dek := make([]byte, 32)
	header := make([]byte, 0, encHeader)
	header = append(header, encMagic...)
	header = append(header, byte(len(s.enc.KeyID)))
	header = append(header, []byte(s.enc.KeyID)...)
	header = append(header, make([]byte, encKeyID-len(s.enc.KeyID))...)
	wrapNonce := make([]byte, 12)
	base := make([]byte, 12)
	for _, b := range [][]byte{dek, wrapNonce, base} {
		if _, err := rand.Read(b); err != nil {
			return err
		}
	}
	header = append(header, wrapNonce...)
	header = gcm(kek).Seal(header, wrapNonce, dek, header[:len(encMagic)+1+encKeyID])
	header = append(header, base...)
	aead := gcm(dek)
	pr, pw := io.Pipe()
	go func() {
		if _, err := pw.Write(header); err != nil {
			return
		}
		cur, next := make([]byte, encSegment), make([]byte, encSegment)
		n, err := io.ReadFull(r, cur)
		var out []byte
		for i := uint64(0); ; i++ {
			if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
				pw.CloseWithError(err)
				return
			}
			// A short segment is the last; a full one is the last when
			// nothing follows it.
			final := n < encSegment
			var m int
			var nerr error
			if !final {
				m, nerr = io.ReadFull(r, next)
				final = m == 0 && nerr == io.EOF
			}
			out = aead.Seal(out[:0], segmentNonce(base, i), cur[:n], segmentAAD(header, i, final))
			if _, werr := pw.Write(out); werr != nil {
				return
			}
			if final {
				pw.Close()
				return
			}
			cur, next = next, cur
			n, err = m, nerr
		}
	}()
	err = put(ctx, key, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	return err
}

// Open implements dataset.Store: an encrypted object is decrypted as it is read.
func (s *Store) Open(ctx context.Context, key string) (dataset.Object, error) {
	obj, err := s.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	size := obj.Size()
	if size < int64(encHeader+encTag) {
		return obj, nil
	}
	header := make([]byte, encHeader)
	if _, err := obj.ReadAt(header, 0); err != nil {
		obj.Close()
		return nil, fmt.Errorf("reading %s/%s: %w", s.Location(), key, err)
	}
	if string(header[:len(encMagic)]) != encMagic {
		return obj, nil
	}
	bad := func(f string, a ...any) error {
		obj.Close()
		return fmt.Errorf("%s/%s: %w: %s", s.Location(), key, ErrDecrypt, fmt.Sprintf(f, a...))
	}
	idLen := int(header[len(encMagic)])
	if idLen > encKeyID {
		return nil, bad("corrupt header")
	}
	id := string(header[len(encMagic)+1 : len(encMagic)+1+idLen])
	kek, err := s.enc.Keys(id)
	if err != nil || len(kek) != 32 {
		return nil, bad("no key %q (%v)", id, err)
	}
	o := len(encMagic) + 1 + encKeyID
	dek, err := gcm(kek).Open(nil, header[o:o+12], header[o+12:o+12+32+encTag], header[:o])
	if err != nil {
		return nil, bad("the data key does not unwrap with key %q", id)
	}
	body := size - int64(encHeader)
	segs := (body + encSegment + encTag - 1) / (encSegment + encTag)
	plain := body - segs*encTag
	if plain < 0 {
		return nil, bad("truncated")
	}
	return &encObject{ctx: ctx, inner: obj, aead: gcm(dek), header: header, base: header[encHeader-12:], size: plain, segs: segs, name: s.Location() + "/" + key, cached: -1}, nil
}

type encObject struct {
	ctx    context.Context
	inner  dataset.Object
	aead   cipher.AEAD
	header []byte
	base   []byte
	size   int64
	segs   int64
	name   string
	cached int64
	buf    []byte
	plain  []byte
}

func (o *encObject) Size() int64  { return o.size }
func (o *encObject) Close() error { return o.inner.Close() }

func (o *encObject) segment(i int64) ([]byte, error) {
	if i == o.cached {
		return o.plain, nil
	}
	off := int64(encHeader) + i*(encSegment+encTag)
	n := min(int64(encSegment+encTag), int64(encHeader)+o.size+o.segs*encTag-off)
	if cap(o.buf) < int(n) {
		o.buf = make([]byte, n)
	}
	ct := o.buf[:n]
	if _, err := o.inner.ReadAt(ct, off); err != nil && !(err == io.EOF) {
		return nil, fmt.Errorf("reading %s: %w", o.name, err)
	}
	p, err := o.aead.Open(o.plain[:0], segmentNonce(o.base, uint64(i)), ct, segmentAAD(o.header, uint64(i), i == o.segs-1))
	if err != nil {
		o.cached = -1
		return nil, fmt.Errorf("%s: %w: segment %d was altered, moved or cut short", o.name, ErrDecrypt, i)
	}
	o.plain, o.cached = p, i
	return p, nil
}

// ReadAt implements io.ReaderAt on the plaintext.
func (o *encObject) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset", o.name)
	}
	if err := o.ctx.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", o.name, err)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= o.size {
			return n, io.EOF
		}
		seg, err := o.segment(pos / encSegment)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], seg[pos%encSegment:])
	}
	return n, nil
}

// List implements dataset.Store, with plaintext sizes (each encrypted object's
// header is read to tell it from a plain one).
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[dataset.ObjectInfo, error] {
	return func(yield func(dataset.ObjectInfo, error) bool) {
		for info, err := range s.Store.List(ctx, prefix) {
			if err == nil {
				info, err = s.plainInfo(ctx, info)
			}
			if !yield(info, err) || err != nil {
				return
			}
		}
	}
}

// Stat implements dataset.Store, with the plaintext size.
func (s *Store) Stat(ctx context.Context, key string) (dataset.ObjectInfo, error) {
	info, err := s.Store.Stat(ctx, key)
	if err != nil {
		return info, err
	}
	return s.plainInfo(ctx, info)
}

func (s *Store) plainInfo(ctx context.Context, info dataset.ObjectInfo) (dataset.ObjectInfo, error) {
	if info.Size < int64(encHeader+encTag) {
		return info, nil
	}
	obj, err := s.Store.Open(ctx, info.Key)
	if err != nil {
		return info, err
	}
	defer obj.Close()
	magic := make([]byte, len(encMagic))
	if _, err := obj.ReadAt(magic, 0); err != nil {
		return info, fmt.Errorf("reading %s/%s: %w", s.Location(), info.Key, err)
	}
	if string(magic) == encMagic {
		body := info.Size - int64(encHeader)
		info.Size = body - (body+encSegment+encTag-1)/(encSegment+encTag)*encTag
	}
	return info, nil
}
