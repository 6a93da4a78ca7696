package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/pgtest"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/postgres"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/storetest"
)

const helperEnv = "RELAY_PG_APPENDER_DSN"

// ack is one acknowledged callback.
type ack struct {
	req, hash string
	seq       int64
}

// storm appends distinct callbacks (spread over 16 requests, batches of 1 to 8) from workers
// goroutines until ctx ends, max callbacks were acknowledged or an Append fails; it reports each
// acknowledged callback to onAck after Append returned.
func storm(ctx context.Context, s store.Store, workers, max int, onAck func(ack)) {
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + time.Now().UnixNano()))
			for i := 0; ctx.Err() == nil && sent.Load() < int64(max); {
				var batch []store.Callback
				for n := 1 + rng.Intn(8); n > 0; n-- {
					req := fmt.Sprintf("K%d", rng.Intn(16))
					batch = append(batch, storetest.CB(req, fmt.Sprintf("%d-%d-%d", w, i, rng.Int63()), "succeeded", true,
						storetest.Base, storetest.K("eid", fmt.Sprintf("%d-%d", w, i))))
					i++
				}
				res, err := s.Append(ctx, batch)
				if err != nil {
					return
				}
				sent.Add(int64(len(batch)))
				for k, r := range res {
					onAck(ack{batch[k].RequestID, batch[k].ContentHash, r.Seq})
				}
			}
		}(w)
	}
	wg.Wait()
}

// TestHelperAppender is the subprocess of TestKillAppenderDuringStorm: it appends until killed
// and prints one "ack" line per acknowledged callback.
func TestHelperAppender(t *testing.T) {
	dsn := os.Getenv(helperEnv)
	if dsn == "" {
		t.Skip("helper process for TestKillAppenderDuringStorm")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	storm(ctx, s, 8, 200000, func(a ack) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, "ack %s %s %d\n", a.req, a.hash, a.seq)
		mu.Unlock()
	})
}

// verifyAcks checks that every acknowledged callback is stored with its seq and that every
// request's seqs are gap-free.
func verifyAcks(t *testing.T, s store.Store, acks []ack) {
	t.Helper()
	want := map[string]map[string]int64{}
	for _, a := range acks {
		if want[a.req] == nil {
			want[a.req] = map[string]int64{}
		}
		want[a.req][a.hash] = a.seq
	}
	stored := 0
	for req, hashes := range want {
		got, err := s.Callbacks(ctx30(t), req, 0, 1000000)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]int64{}
		for i, c := range got {
			if c.Seq != int64(i+1) {
				t.Fatalf("%s: callback %d has seq %d: gap", req, i, c.Seq)
			}
			have[c.ContentHash] = c.Seq
		}
		for h, seq := range hashes {
			if have[h] != seq {
				t.Fatalf("%s: acknowledged callback %s (seq %d) lost (stored seq %d)", req, h[:12], seq, have[h])
			}
		}
		stored += len(got)
	}
	t.Logf("%d acknowledged callbacks all present (%d stored)", len(acks), stored)
}

// SIGKILL of a relay process appending during a storm: every callback it acknowledged is stored.
func TestKillAppenderDuringStorm(t *testing.T) {
	dsn := pgtest.Start(t)
	open(t, dsn) // migrate before the child starts
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dsn)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	r := bufio.NewReader(out)
	var acks []ack
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break // a last line without its newline is not an acknowledgement
		}
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "ack" {
			seq, _ := strconv.ParseInt(f[3], 10, 64)
			acks = append(acks, ack{f[1], f[2], seq})
		} else if strings.HasPrefix(line, "open failed") {
			t.Fatal(line)
		}
		if len(acks) >= 3000 && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("helper ended before it was killed, after %d acks", len(acks))
	}
	verifyAcks(t, open(t, dsn), acks)
}

// A PostgreSQL crash (SIGKILL of every server process, fsync on) during a storm: after crash
// recovery every acknowledged callback is stored.
func TestKillPostgresDuringStorm(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.NewDatabase(t)
	s := open(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var acks []ack
	done := make(chan struct{})
	enough := make(chan struct{})
	go func() {
		defer close(done)
		storm(ctx, s, 8, 200000, func(a ack) {
			mu.Lock()
			acks = append(acks, a)
			if len(acks) == 2000 {
				close(enough)
			}
			mu.Unlock()
		})
	}()
	select {
	case <-enough:
	case <-done:
		t.Fatal("storm ended early")
	}
	srv.Kill(t)
	<-done // every worker stops at its first failed Append
	srv.Start(t)
	mu.Lock()
	defer mu.Unlock()
	verifyAcks(t, open(t, dsn), acks)
}
