package main

import (
	"strings"
	"testing"
)

func TestTally(t *testing.T) {
	in := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"run","Package":"p","Test":"TestB/sub"}
{"Action":"output","Package":"p","Test":"TestB/sub","Output":"    b_test.go:3: want 2\n"}
{"Action":"fail","Package":"p","Test":"TestB/sub"}
{"Action":"fail","Package":"p","Test":"TestB"}
{"Action":"skip","Package":"p","Test":"TestS3"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p"}
{"Action":"build-output","ImportPath":"q","Output":"q/x.go:1: syntax error\n"}
{"Action":"fail","Package":"q"}
{"Action":"pass","Package":"./fuzz","Test":"FuzzSpec"}
not json: go: downloading x
`
	var w strings.Builder
	c, err := tally(strings.NewReader(in), &w)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.String(), "2 passed, 3 failed, 1 skipped"; got != want {
		t.Errorf("counts %q, want %q", got, want)
	}
	for _, s := range []string{"want 2", "FAIL\tp", "syntax error", "not json"} {
		if !strings.Contains(w.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, w.String())
		}
	}
	if strings.Contains(w.String(), "=== RUN   TestA") {
		t.Errorf("a passing test's output was printed:\n%s", w.String())
	}
}
