package benchmarks

import (
	"errors"
	"strconv"
	"sync"

	"github.com/ae30fb47/eventbus"
)

// Msg is the payload every library carries: who published it and its place in that
// publisher's (or that key's) sequence, so that a subscriber can tell a missing,
// duplicated or reordered event. Libraries that move bytes encode it (see encodeMsg).
type Msg struct {
	Seq uint64 // 0, 1, 2, ... per publisher (A, B, D, E, F) or per key (C)
	Pub uint32 // the publisher's index (F); 0 otherwise
	Key uint32 // the key's index (C), into keyNames; 0 otherwise
}

const (
	// queueDepth is every library's buffer per subscriber (or per consumer) where it has
	// one to set: eventbus's default, so all hold about as much before a publisher waits.
	// kelindar/event's queue is fixed at 50,000 events; gookit/event's is per manager.
	queueDepth = eventbus.DefaultBuffer

	// keyCount is the number of ordering keys of scenario C.
	keyCount = 64

	// shardCount is the number of ordered consumers that a library without per-key
	// ordering gets in scenario C: each key goes to the shard its hash picks, and a single
	// consumer per shard keeps the shard's events, so each key's, in order. That is how
	// per-key order is usually built on a plain pub/sub (Kafka's partitions, in small).
	shardCount = 2
)

// keyNames are the keys of scenario C as a publisher would have them: strings.
var keyNames = func() []string {
	names := make([]string, keyCount)
	for i := range names {
		names[i] = "key-" + strconv.Itoa(i)
	}
	return names
}()

// shardOf picks the ordered shard of a key with FNV-1a, computed on every event as a
// publisher would (eventbus hashes the key inside Publish likewise). The 64 keys split
// 32/32 between the two shards.
func shardOf(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % shardCount)
}

// benchTopic is the topic (or event name) of every scenario but C.
const benchTopic = "bench"

// shardTopics are the topic names of the ordered shards of scenario C.
var shardTopics = func() []string {
	topics := make([]string, shardCount)
	for i := range topics {
		topics[i] = "bench-shard-" + strconv.Itoa(i)
	}
	return topics
}()

// topicOf returns the topic m goes to: benchTopic, or in scenario C its key's shard's.
func topicOf(ordered bool, m Msg) string {
	if ordered {
		return shardTopics[shardOf(keyNames[m.Key])]
	}
	return benchTopic
}

// A library is one event bus under test, driven through its public API.
type library struct {
	name string
	// start returns a running instance shaped by cfg, or a skipReason if the library
	// cannot do what cfg asks.
	start func(cfg config) (instance, error)
}

// config shapes an instance for a scenario.
type config struct {
	// subscribers is the number of subscribers; each handles every event.
	subscribers int
	// ordered asks that each subscriber handle the events of each key (Msg.Key) in publish
	// order. Libraries without per-key ordering shard by key over shardCount consumers.
	ordered bool
	// deliver is the handler: every subscriber calls it for every event it handles, with
	// its index in [0, subscribers). It is safe for concurrent use.
	deliver func(sub int, m Msg)
}

// consumers calls add once per consumer a library needs for cfg: one per subscriber, on
// benchTopic; or, ordered, one per shard, on the shard's topic, each of them subscriber 0.
// It stops at the first error.
func (cfg config) consumers(add func(sub, shard int, topic string) error) error {
	if cfg.ordered {
		for shard, topic := range shardTopics {
			if err := add(0, shard, topic); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range cfg.subscribers {
		if err := add(i, 0, benchTopic); err != nil {
			return err
		}
	}
	return nil
}

// drain starts a goroutine, owned by wg, that hands every Msg of ch to subscriber sub's
// handler until ch is closed.
func (cfg config) drain(wg *sync.WaitGroup, sub int, ch <-chan Msg) {
	wg.Go(func() {
		for m := range ch {
			cfg.deliver(sub, m)
		}
	})
}

// instance is a running library with its subscribers.
type instance interface {
	// publish sends m to every subscriber; it may block (backpressure). Safe for
	// concurrent use (scenario F).
	publish(m Msg) error
	// close stops every goroutine the library started for the instance, and those the
	// adapter started, once all published events were handled.
	close() error
}

// skipReason is the error of a library that cannot run a scenario, with the reason.
type skipReason string

func (r skipReason) Error() string { return string(r) }

// isSkip reports whether err says the scenario does not apply, and why.
func isSkip(err error) (string, bool) {
	var r skipReason
	if errors.As(err, &r) {
		return string(r), true
	}
	return "", false
}

// peers are the libraries of scenarios A, B, C, D and F: eventbus with its defaults first,
// then the others.
var peers = []library{
	eventbusLib("eventbus", false),
	channelLib,
	kelindarLib,
	cskrLib,
	vardiusLib,
	mustafaturanLib,
	gookitLib,
	asaskevichLib,
	watermillLib,
}

// guarantees are the libraries of scenario E: eventbus with its defaults, and with a
// retry policy, a dead-letter hook and de-duplication on, so the two figures of one run
// show what the guarantees cost when nothing fails.
var guarantees = []library{
	eventbusLib("eventbus", false),
	eventbusLib("eventbus-guarantees", true),
}
