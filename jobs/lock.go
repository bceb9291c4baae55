package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/veil-privacy/veil/dataset"
)

// lease is the content of a lock object.
type lease struct {
	Holder  string    `json:"holder"`
	Gen     int       `json:"generation"`
	Expires time.Time `json:"expires_at"`
}

// Lock is a lease lock on a store: generation n is the object
// PREFIX/NNNNNNNNNN.json, created with PutIfAbsent (S3 If-None-Match, a
// hard link on files). The highest generation holds the lock until it
// expires; the holder renews it by rewriting its own object. Whoever finds
// it expired creates generation n+1, and only one creator can win.
type Lock struct {
	store  dataset.Store
	prefix string
	mu     sync.Mutex // guards me: the run and keepAlive both renew
	me     lease
	ttl    time.Duration
	now    func() time.Time
	// tookOver names the holder whose live lease this lock replaced because
	// its process was gone (see holderGone), for the runner to log.
	tookOver string
}

func (l *Lock) key(gen int) string { return fmt.Sprintf("%s/%010d.json", l.prefix, gen) }

// current returns the highest generation and its lease.
func current(ctx context.Context, s dataset.Store, prefix string) (int, *lease, error) {
	gen := 0
	for info, err := range s.List(ctx, prefix+"/") {
		if err != nil {
			return 0, nil, err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(info.Key, prefix+"/"), ".json")
		if n, err := strconv.Atoi(name); err == nil && n > gen {
			gen = n
		}
	}
	if gen == 0 {
		return 0, nil, nil
	}
	data, err := dataset.ReadAll(ctx, s, fmt.Sprintf("%s/%010d.json", prefix, gen))
	if err != nil {
		return 0, nil, err
	}
	var l lease
	if err := json.Unmarshal(data, &l); err != nil {
		return 0, nil, fmt.Errorf("lock %s generation %d: %w", prefix, gen, err)
	}
	return gen, &l, nil
}

func acquire(ctx context.Context, s dataset.Store, prefix, holder string, ttl time.Duration, now func() time.Time) (*Lock, error) {
	l := &Lock{store: s, prefix: prefix, ttl: ttl, now: now}
	for range 10 {
		gen, cur, err := current(ctx, s, prefix)
		if err != nil {
			return nil, err
		}
		l.tookOver = ""
		if cur != nil && cur.Holder != "" && now().Before(cur.Expires) && holderGone(cur.Holder) {
			l.tookOver = cur.Holder
		} else if cur != nil && cur.Holder != "" && now().Before(cur.Expires) {
			return nil, fmt.Errorf("%w: %s holds it until %s (generation %d)", ErrLocked, cur.Holder, cur.Expires.UTC().Format(time.RFC3339), gen)
		}
		l.me = lease{Holder: holder, Gen: gen + 1, Expires: now().Add(ttl).UTC()}
		b, _ := json.Marshal(l.me)
		err = s.PutIfAbsent(ctx, l.key(l.me.Gen), strings.NewReader(string(b)))
		if errors.Is(err, dataset.ErrExist) {
			continue // someone else took this generation: look again
		}
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("%w: could not take the lock at %s", ErrLocked, prefix)
}

// renew extends the lease, after checking that nobody took the lock over.
func (l *Lock) renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	gen, cur, err := current(ctx, l.store, l.prefix)
	if err != nil {
		return err
	}
	if gen != l.me.Gen || cur.Holder != l.me.Holder {
		return fmt.Errorf("%w: the lease expired and %s took the lock over", ErrLocked, cur.Holder)
	}
	l.me.Expires = l.now().Add(l.ttl).UTC()
	b, _ := json.Marshal(l.me)
	return dataset.PutBytes(ctx, l.store, l.key(l.me.Gen), b)
}

// keepAlive renews the lease every third of its length until ctx ends; if
// the lease is lost it cancels ctx with the reason.
func (l *Lock) keepAlive(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.renew(ctx); err != nil && ctx.Err() == nil {
				cancel(err)
				return
			}
		}
	}
}

// release ends the lease at once (a released generation has no holder).
func (l *Lock) release(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gen, cur, err := current(ctx, l.store, l.prefix); err == nil && gen == l.me.Gen && cur.Holder == l.me.Holder {
		b, _ := json.Marshal(lease{Gen: l.me.Gen, Expires: l.now().UTC()})
		dataset.PutBytes(ctx, l.store, l.key(l.me.Gen), b)
	}
}

// holderGone reports whether a lease's holder (USER@HOST:PID, as
// defaultHolder names it) is a process of this host that no longer runs: a
// run killed with -9 on this machine, whose lease need not be waited out.
// A holder on another host, or one whose name does not parse, is never gone:
// only its lease can tell.
func holderGone(holder string) bool {
	at, colon := strings.LastIndex(holder, "@"), strings.LastIndex(holder, ":")
	if at < 0 || colon < at {
		return false
	}
	pid, err := strconv.Atoi(holder[colon+1:])
	if err != nil || pid <= 0 {
		return false
	}
	if host, err := os.Hostname(); err != nil || host != holder[at+1:colon] {
		return false
	}
	if pid == os.Getpid() {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}
