// Package strictyaml decodes configuration files strictly: unknown keys,
// duplicate keys and type mismatches are errors that name the file, line and
// column, on one line.
package strictyaml

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/token"
)

// ErrInvalid is wrapped by every decoding error.
var ErrInvalid = errors.New("invalid configuration")

// Error is a decoding error at a position of a file.
type Error struct {
	File         string
	Line, Column int
	Message      string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Message)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Decode decodes data (the contents of file) into v, refusing unknown keys.
// It never panics: go-yaml panics on some malformed input (found by
// fuzzing), and that is the input's fault, so it becomes an error.
func Decode(file string, data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{File: file, Message: fmt.Sprintf("malformed YAML (%v)", r)}
		}
	}()
	if len(strings.TrimSpace(string(data))) == 0 {
		return &Error{File: file, Message: "file is empty"}
	}
	err = yaml.UnmarshalWithOptions(data, v, yaml.Strict())
	if err == nil {
		return nil
	}
	e := &Error{File: file, Message: oneLine(err.Error())}
	var pe positioned
	if errors.As(err, &pe) {
		if tok := pe.GetToken(); tok != nil && tok.Position != nil {
			e.Line, e.Column = tok.Position.Line, tok.Position.Column
		}
		e.Message = oneLine(pe.GetMessage())
	}
	return e
}

// positioned is what go-yaml's errors provide.
type positioned interface {
	GetMessage() string
	GetToken() *token.Token
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
