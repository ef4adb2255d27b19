package natsbridge_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
)

var restartAckWait = flag.Duration("restart.ackwait", 2*time.Second,
	"AckWait of TestProcessRestart's consumers (the bridge's default is 30s)")

// A receiving process restarted while events flow, gracefully (SIGTERM: the process closes
// its bridge) and then by kill -9, loses nothing; the graceful restart repeats nothing and
// resumes as soon as the new process has connected; after kill -9, what the dead process
// had in flight comes back after AckWait, its partition waiting meanwhile. The consumer
// is this test binary run again as a child process (TestRestartHelper).
func TestProcessRestart(t *testing.T) {
	if os.Getenv("NATSBRIDGE_RESTART_HELPER") != "" {
		t.Skip("the helper process")
	}
	const keys, total = 8, 1500
	s := startServer(t)
	a := newBus(t, "producer")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	handled := newHandledLog()

	start := func(name string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRestartHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "NATSBRIDGE_RESTART_HELPER="+name, "HELPER_URL="+s.url(),
			"HELPER_STREAM="+s.stream, "HELPER_PREFIX="+s.prefix, "HELPER_ACKWAIT="+restartAckWait.String())
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		go handled.read(name, out, ready)
		select {
		case <-ready:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("consumer %s did not connect within 20s", name)
		}
		return cmd
	}

	published := make(chan struct{})
	go func() {
		defer close(published)
		pace := time.NewTicker(2 * time.Millisecond)
		defer pace.Stop()
		for i := range total {
			<-pace.C
			key := fmt.Sprint("k", i%keys)
			if err := eventbus.Publish(context.Background(), a, steps, step{Key: key, Seq: i / keys}, eventbus.WithKey(key)); err != nil {
				t.Errorf("Publish() = %v", err)
				return
			}
		}
	}()

	first := start("first")
	eventually(t, 30*time.Second, func() bool { return handled.count() >= total/4 }, func() string { return "the first consumer stalled" })
	termAt := time.Now()
	first.Process.Signal(syscall.SIGTERM)
	if err := first.Wait(); err != nil {
		t.Fatalf("the first consumer, after SIGTERM: %v", err)
	}
	second := start("second")
	parts := map[int]bool{}
	for k := range keys {
		parts[natsbridge.Partition(fmt.Sprint("k", k), 4)] = true
	}
	resumed := func(name string) func() bool { return func() bool { return handled.partitions(name) == len(parts) } }
	eventually(t, 30*time.Second+3**restartAckWait, resumed("second"), func() string { return "the second consumer did not resume every partition" })
	graceful := handled.resume("second", termAt)

	eventually(t, 30*time.Second, func() bool { return handled.count() >= total/2 }, func() string { return "the second consumer stalled" })
	killAt := time.Now()
	second.Process.Kill()
	second.Wait()
	third := start("third")
	eventually(t, 30*time.Second+3**restartAckWait, resumed("third"), func() string { return "the third consumer did not resume every partition" })
	<-published
	eventually(t, 30*time.Second+3**restartAckWait, func() bool { return handled.distinct() == total },
		func() string { return fmt.Sprintf("handled %d of %d", handled.distinct(), total) })
	killed := handled.resume("third", killAt)
	third.Process.Signal(syscall.SIGTERM)
	third.Wait()

	lost := total - handled.distinct()
	dupTerm, dupKill := handled.repeatsAcross("first", "second"), handled.repeatsAcross("second", "third")
	t.Logf("nats-server %s, %d events over %d keys, AckWait %v", serverVersion(t, s), total, keys, *restartAckWait)
	t.Logf("lost %d of %d", lost, total)
	t.Logf("SIGTERM: duplicated %d, first event %.2fs after the signal (%.2fs after the new consumer connected), every partition within %.2fs",
		dupTerm, graceful.first.Seconds(), graceful.afterReady.Seconds(), graceful.all.Seconds())
	t.Logf("kill -9: duplicated %d, first event %.2fs after the kill (%.2fs after the new consumer connected), every partition within %.2fs",
		dupKill, killed.first.Seconds(), killed.afterReady.Seconds(), killed.all.Seconds())
	if dupTerm != 0 {
		t.Errorf("the graceful restart repeated %d events; want none", dupTerm)
	}
	if graceful.all-graceful.ready > time.Second {
		t.Errorf("after the graceful restart every partition resumed within %v of the signal, %v after connecting; want within a second of connecting",
			graceful.all, graceful.all-graceful.ready)
	}
	handled.checkOrder(t)
}

// TestRestartHelper is the consumer process of TestProcessRestart: it receives steps and
// prints each handled event, until SIGTERM (then it closes its bridge and exits) or kill -9.
func TestRestartHelper(t *testing.T) {
	name := os.Getenv("NATSBRIDGE_RESTART_HELPER")
	if name == "" {
		t.Skip("run by TestProcessRestart")
	}
	ackWait, _ := time.ParseDuration(os.Getenv("HELPER_ACKWAIT"))
	cfg := natsbridge.Config{URL: os.Getenv("HELPER_URL"), Stream: os.Getenv("HELPER_STREAM"),
		SubjectPrefix: os.Getenv("HELPER_PREFIX"), Partitions: 4, AckWait: ackWait, Logger: quietLogger}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	b := eventbus.New(eventbus.WithLogger(quietLogger))
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	eventbus.Subscribe(b, steps, "ledger", func(_ context.Context, ev eventbus.Event[step]) error {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "H %s %s %d\n", ev.ID, ev.Payload.Key, ev.Payload.Seq)
		return w.Flush()
	})
	br, err := natsbridge.Connect(context.Background(), b, cfg, natsbridge.Receive(steps))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fmt.Fprintln(w, "READY")
	w.Flush()
	mu.Unlock()
	<-terms
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := br.Close(ctx); err != nil {
		t.Errorf("Bridge.Close() = %v", err)
	}
	b.Close(ctx)
}

// handledLog is what the consumer processes handled, with when the parent read it.
type handledLog struct {
	mu      sync.Mutex
	byID    map[string][]string // the consumers that handled each event ID
	first   map[string]time.Time
	readyAt map[string]time.Time
	lastKey map[string]int
	byPart  map[string]map[int]time.Time // per consumer, the first event of each partition
	order   []string
}

func newHandledLog() *handledLog {
	return &handledLog{byID: map[string][]string{}, first: map[string]time.Time{}, readyAt: map[string]time.Time{},
		lastKey: map[string]int{}, byPart: map[string]map[int]time.Time{}}
}

func (h *handledLog) read(name string, out interface{ Read([]byte) (int, error) }, ready chan struct{}) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		h.mu.Lock()
		if line == "READY" {
			h.readyAt[name] = now
			close(ready)
			h.mu.Unlock()
			continue
		}
		var id, key string
		var seq int
		if _, err := fmt.Sscanf(line, "H %s %s %d", &id, &key, &seq); err == nil {
			h.byID[id] = append(h.byID[id], name)
			if len(h.byID[id]) == 1 {
				if last, ok := h.lastKey[key]; ok && seq <= last {
					h.order = append(h.order, fmt.Sprintf("key %s: seq %d after %d", key, seq, last))
				}
				h.lastKey[key] = max(h.lastKey[key], seq)
			}
			if _, ok := h.first[name]; !ok {
				h.first[name] = now
			}
			if h.byPart[name] == nil {
				h.byPart[name] = map[int]time.Time{}
			}
			if p := natsbridge.Partition(key, 4); h.byPart[name][p].IsZero() {
				h.byPart[name][p] = now
			}
		}
		h.mu.Unlock()
	}
}

// partitions returns how many partitions consumer name has handled events of.
func (h *handledLog) partitions(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byPart[name])
}

func (h *handledLog) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, by := range h.byID {
		n += len(by)
	}
	return n
}

func (h *handledLog) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byID)
}

// resumption says how long after a consumer stopped (at) the next one, name, handled its
// first event, and its first event of every partition.
type resumption struct{ first, afterReady, ready, all time.Duration }

func (h *handledLog) resume(name string, at time.Time) resumption {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := resumption{first: h.first[name].Sub(at), afterReady: h.first[name].Sub(h.readyAt[name]), ready: h.readyAt[name].Sub(at)}
	for _, t := range h.byPart[name] {
		r.all = max(r.all, t.Sub(at))
	}
	return r
}

// repeatsAcross counts the events that both consumers handled.
func (h *handledLog) repeatsAcross(a, b string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, by := range h.byID {
		s := strings.Join(by, ",")
		if strings.Contains(s, a) && strings.Contains(s, b) {
			n++
		}
	}
	return n
}

func (h *handledLog) checkOrder(t *testing.T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.order) > 0 {
		t.Errorf("per-key order broken across the restarts: %v", h.order[:min(5, len(h.order))])
	}
}
