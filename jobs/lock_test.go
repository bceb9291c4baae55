package jobs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/veil-privacy/veil/dataset"
)

// deadPID returns the id of a process of this host that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

// A lease whose holder was a process of this host that is gone (kill -9) is
// taken over at once; a holder elsewhere, or alive here, keeps its lease.
func TestLockTakeover(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	dead := deadPID(t)
	tests := []struct {
		holder string
		locked bool
	}{
		{fmt.Sprintf("cron@%s:%d", host, dead), false},
		{fmt.Sprintf("cron@%s:%d", host, os.Getpid()), true},
		{fmt.Sprintf("cron@%s:%d", host, os.Getppid()), true},
		{fmt.Sprintf("cron@elsewhere-%s:%d", host, dead), true},
		{"a holder of another format", true},
	}
	for _, tc := range tests {
		t.Run(tc.holder, func(t *testing.T) {
			store, _ := dataset.NewFileStore(t.TempDir())
			if _, err := acquire(ctx, store, "lk", tc.holder, time.Hour, time.Now); err != nil {
				t.Fatal(err)
			}
			l, err := acquire(ctx, store, "lk", "me@"+host+":1", time.Hour, time.Now)
			if tc.locked {
				if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), tc.holder) {
					t.Errorf("took a live or remote holder's lock: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("a gone holder's lease blocks: %v", err)
			}
			if l.tookOver != tc.holder {
				t.Errorf("tookOver = %q, want %q", l.tookOver, tc.holder)
			}
		})
	}
}

// Without $USER (cron) the holder names the operating system user.
func TestDefaultHolderWithoutUSER(t *testing.T) {
	t.Setenv("USER", "")
	h := defaultHolder()
	if strings.HasPrefix(h, "unknown@") || strings.HasPrefix(h, "@") || !holderParses(h) {
		t.Errorf("holder %q", h)
	}
}

func holderParses(h string) bool {
	at, colon := strings.LastIndex(h, "@"), strings.LastIndex(h, ":")
	return at > 0 && colon > at
}
