package storetest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Faults says how often a Proxy breaks a request: one draw per request
// picks at most one kind.
type Faults struct {
	ServerError float64 // 500 InternalError, body not read by the server
	Throttle    float64 // 503 SlowDown
	Reset       float64 // the connection is closed without a response
	Truncate    float64 // a GET response is cut off half way
	Slow        float64 // the response waits SlowFor first
	SlowFor     time.Duration
	Seed        uint64
}

// Request is what the proxy saw of one request.
type Request struct {
	Method, Path, Query string
	Header              http.Header
	Fault               string // "" when forwarded untouched
}

// Proxy is a recording, fault-injecting HTTP proxy in front of an S3
// endpoint.
type Proxy struct {
	URL string

	mu       sync.Mutex
	requests []Request
	rng      *rand.Rand
	faults   Faults
}

// NewProxy starts a proxy to target on the loopback interface; it stops
// when the test ends.
func NewProxy(t testing.TB, target string, f Faults) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{rng: rand.New(rand.NewPCG(f.Seed, 99)), faults: f}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fault := p.draw(r)
		p.mu.Lock()
		p.requests = append(p.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Fault: fault})
		p.mu.Unlock()
		switch fault {
		case "server-error":
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`)
			return
		case "throttle":
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>`)
			return
		case "reset":
			if hj, ok := w.(http.Hijacker); ok {
				conn, _, err := hj.Hijack()
				if err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						tc.SetLinger(0)
					}
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case "slow":
			time.Sleep(f.SlowFor)
		case "truncate":
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			if hj, ok := w.(http.Hijacker); ok {
				conn, buf, err := hj.Hijack()
				if err == nil {
					body := rec.Body.Bytes()
					writeTruncated(buf, rec, body[:len(body)/2], len(body))
					buf.Flush()
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// writeTruncated writes a response head that promises n bytes and then
// only part of them.
func writeTruncated(w *bufio.ReadWriter, rec *httptest.ResponseRecorder, part []byte, n int) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
	for k, vs := range rec.Header() {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(w, "Content-Length: %d\r\n\r\n", n)
	w.Write(part)
}

func (p *Proxy) draw(r *http.Request) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	switch u := p.rng.Float64(); {
	case u < f.ServerError:
		return "server-error"
	case u < f.ServerError+f.Throttle:
		return "throttle"
	case u < f.ServerError+f.Throttle+f.Reset:
		return "reset"
	case u < f.ServerError+f.Throttle+f.Reset+f.Slow:
		return "slow"
	case r.Method == http.MethodGet && u < f.ServerError+f.Throttle+f.Reset+f.Slow+f.Truncate:
		return "truncate"
	}
	return ""
}

// Requests returns what the proxy saw so far.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// SetFaults changes the faults for the requests to come.
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}
