package lineage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/veil-privacy/veil/dataset"
)

// Transport delivers one event (its JSON).
type Transport interface {
	Send(ctx context.Context, ev Event, data []byte) error
}

// StoreTransport writes each event as a JSON line object beside the
// outputs: PREFIX/dt=DATE/RUN_ID/NNNNNN-TYPE.json (object stores cannot
// append, so a run's events are the objects of its folder, in order).
type StoreTransport struct {
	Store  dataset.Store
	Prefix string
	seq    atomic.Int64
}

// Send implements Transport.
func (t *StoreTransport) Send(ctx context.Context, ev Event, data []byte) error {
	key := dataset.Join(t.Prefix, "dt="+ev.EventTime.Format(time.DateOnly), ev.Run.RunID,
		fmt.Sprintf("%d-%04d-%s.json", ev.EventTime.UnixNano(), t.seq.Add(1), strings.ToLower(ev.EventType)))
	return dataset.PutBytes(ctx, t.Store, key, append(data, '\n'))
}

// ConsoleTransport writes events as JSON lines to a writer.
type ConsoleTransport struct{ W io.Writer }

// Send implements Transport.
func (t ConsoleTransport) Send(_ context.Context, _ Event, data []byte) error {
	_, err := t.W.Write(append(data, '\n'))
	return err
}

// HTTPTransport posts events to a Marquez-compatible endpoint
// (URL/api/v1/lineage), retrying with backoff; an event it cannot deliver is
// spooled to a store and sent again, first, with the next event, so none is
// lost.
type HTTPTransport struct {
	URL      string // base URL, such as http://marquez:5000
	APIKey   string // sent as Authorization: Bearer
	Client   *http.Client
	Attempts int           // per event (default 4)
	Backoff  time.Duration // before the second attempt, doubling (default 500ms)
	Spool    dataset.Store // where undelivered events wait
	Prefix   string
}

func (t *HTTPTransport) post(ctx context.Context, data []byte) error {
	client := t.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	attempts, backoff := max(1, t.Attempts), t.Backoff
	if t.Attempts == 0 {
		attempts = 4
	}
	if backoff == 0 {
		backoff = 500 * time.Millisecond
	}
	var err error
	for a := range attempts {
		if a > 0 {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff *= 2
		}
		req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.URL, "/")+"/api/v1/lineage", bytes.NewReader(data))
		if rerr != nil {
			return rerr
		}
		req.Header.Set("Content-Type", "application/json")
		if t.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+t.APIKey)
		}
		resp, herr := client.Do(req)
		if herr != nil {
			err = herr
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		err = fmt.Errorf("lineage endpoint answered %s", resp.Status)
		if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests {
			return err // the event is refused: retrying will not help
		}
	}
	return err
}

// Flush sends spooled events, oldest first, removing each once delivered.
func (t *HTTPTransport) Flush(ctx context.Context) error {
	if t.Spool == nil {
		return nil
	}
	for info, err := range t.Spool.List(ctx, dataset.Join(t.Prefix, "")+"/") {
		if err != nil {
			return err
		}
		data, err := dataset.ReadAll(ctx, t.Spool, info.Key)
		if err != nil {
			return err
		}
		if err := t.post(ctx, bytes.TrimSpace(data)); err != nil {
			return err
		}
		if err := t.Spool.Delete(ctx, info.Key); err != nil {
			return err
		}
	}
	return nil
}

// Send implements Transport: spooled events first, then this one; an event
// that cannot be delivered is spooled and the error returned.
func (t *HTTPTransport) Send(ctx context.Context, ev Event, data []byte) error {
	if err := t.Flush(ctx); err == nil {
		if err = t.post(ctx, data); err == nil {
			return nil
		}
	}
	if t.Spool == nil {
		return fmt.Errorf("delivering lineage event to %s failed and there is no spool", t.URL)
	}
	key := dataset.Join(t.Prefix, fmt.Sprintf("%020d-%s.json", time.Now().UnixNano(), uuid.NewString()))
	if err := dataset.PutBytes(context.WithoutCancel(ctx), t.Spool, key, append(data, '\n')); err != nil {
		return fmt.Errorf("spooling an undelivered lineage event: %w", err)
	}
	return fmt.Errorf("lineage endpoint %s unreachable: event spooled to %s/%s", t.URL, t.Spool.Location(), key)
}

// Emitter sends events to every transport. A transport that fails is
// logged, not fatal: a job's exit code is the job's.
type Emitter struct {
	Transports []Transport
	Log        *slog.Logger
}

// Emit sends ev.
func (e *Emitter) Emit(ctx context.Context, ev Event) {
	if e == nil {
		return
	}
	data, err := json.Marshal(ev)
	if err != nil {
		e.log().Error("lineage event not encoded", "error", err.Error())
		return
	}
	for _, t := range e.Transports {
		if err := t.Send(ctx, ev, data); err != nil {
			e.log().Warn("lineage event not delivered", "event", ev.EventType, "job", ev.Job.Name, "error", err.Error())
		}
	}
}

func (e *Emitter) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}
