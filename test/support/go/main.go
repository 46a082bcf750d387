// Command interop-go is the Go side of the interop e2e specs (test/interop-go.e2e-spec.ts): a consumer-group member
// (IBM/sarama or twmb/franz-go, classic protocol, eager range/roundrobin) and a producer of records the spec
// describes. It reports what it does as JSON lines on stdout, one event per line, and nothing else there.
//
//	interop-go consume -client sarama|franz -brokers B -group G -topics T[,T2] -client-id C -strategies range,roundrobin
//	interop-go produce -client sarama|franz -brokers B -topic T   (records as JSON lines on stdin)
//	interop-go read -brokers B -topic T -count N                   (every record with the codec of its batch)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Group timings of the e2e specs: short enough for fast rebalances on a busy 2-core machine, long enough not to
// be evicted by it (see DESIGN.md, "Fast and stable group tests").
const (
	sessionTimeout    = 6 * time.Second
	heartbeatInterval = 500 * time.Millisecond
	rebalanceTimeout  = 10 * time.Second
	fetchMaxWait      = 200 * time.Millisecond
	commitInterval    = 200 * time.Millisecond
)

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

// emit writes one event as a JSON line and flushes it at once: the spec reacts to each line as it comes.
func emit(event string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["event"] = event
	line, err := json.Marshal(fields)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"event":"error","message":%q}`, err.Error()))
	}
	out.Lock()
	defer out.Unlock()
	out.w.Write(line)
	out.w.WriteByte('\n')
	out.w.Flush()
}

func fail(format string, args ...any) {
	emit("error", map[string]any{"message": fmt.Sprintf(format, args...)})
	emit("exit", map[string]any{"reason": "error"})
	os.Exit(1)
}

// header is one record header: a name and a value that may be null.
type header struct {
	Key   string
	Value *string
}

func (h header) MarshalJSON() ([]byte, error) { return json.Marshal([]any{h.Key, h.Value}) }

func (h *header) UnmarshalJSON(data []byte) error {
	var pair []*string
	if err := json.Unmarshal(data, &pair); err != nil {
		return err
	}
	if len(pair) != 2 || pair[0] == nil {
		return fmt.Errorf("a header is [name, value|null], got %s", data)
	}
	h.Key, h.Value = *pair[0], pair[1]
	return nil
}

// record is what the spec asks the producer to write, and what the consumer reports: a null key or value is nil.
type record struct {
	Key       *string  `json:"key"`
	Value     *string  `json:"value"`
	Headers   []header `json:"headers"`
	Partition int32    `json:"partition"`
	Codec     string   `json:"codec"`
}

func bytesOrNil(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

func stringOrNil(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

type consumeOptions struct {
	brokers, topics []string
	group, clientID string
	strategies      []string
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: interop-go consume|produce|read [flags]")
	}
	command := os.Args[1]
	flags := flag.NewFlagSet(command, flag.ExitOnError)
	client := flags.String("client", "sarama", "sarama or franz")
	brokers := flags.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma separated")
	group := flags.String("group", "", "consumer group")
	topics := flags.String("topics", "", "topics to subscribe to, comma separated")
	topic := flags.String("topic", "", "topic to produce to or read")
	clientID := flags.String("client-id", "interop-go", "client id (member ids start with it)")
	strategies := flags.String("strategies", "range,roundrobin", "protocols in order of preference")
	count := flags.Int("count", 0, "records to read")
	maxRuntime := flags.Duration("max-runtime", 2*time.Minute, "exit after this long whatever happens")
	flags.Parse(os.Args[2:])

	// Never outlive the spec: SIGTERM/SIGINT end the command the clean way, the deadline in any case.
	ctx, cancel := context.WithTimeout(context.Background(), *maxRuntime)
	defer cancel()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	var signalled atomic.Bool
	go func() {
		<-signals
		signalled.Store(true)
		cancel()
	}()

	brokerList := strings.Split(*brokers, ",")
	switch command {
	case "consume":
		options := consumeOptions{
			brokers: brokerList, topics: strings.Split(*topics, ","), group: *group,
			clientID: *clientID, strategies: strings.Split(*strategies, ","),
		}
		emit("started", map[string]any{"client": *client})
		var err error
		switch *client {
		case "sarama":
			err = consumeSarama(ctx, options)
		case "franz":
			err = consumeFranz(ctx, options)
		default:
			fail("unknown client %q", *client)
		}
		if err != nil {
			fail("%s consumer: %v", *client, err)
		}
		reason := "timeout"
		if signalled.Load() {
			reason = "signal"
		}
		emit("exit", map[string]any{"reason": reason})
	case "produce":
		var records []record
		scanner := bufio.NewScanner(os.Stdin)
		scanner.Buffer(make([]byte, 1<<20), 16<<20)
		for scanner.Scan() {
			var r record
			if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {
				fail("bad record line %q: %v", scanner.Text(), err)
			}
			records = append(records, r)
		}
		var err error
		switch *client {
		case "sarama":
			err = produceSarama(ctx, brokerList, *topic, records)
		case "franz":
			err = produceFranz(ctx, brokerList, *topic, records)
		default:
			fail("unknown client %q", *client)
		}
		if err != nil {
			fail("%s producer: %v", *client, err)
		}
		emit("exit", map[string]any{"reason": "done"})
	case "read":
		if err := readFranz(ctx, brokerList, *topic, *count); err != nil {
			fail("read: %v", err)
		}
		emit("exit", map[string]any{"reason": "done"})
	default:
		fail("unknown command %q", command)
	}
}

// byCodec splits records into runs of the same codec, in order: each run is produced with its own codec.
func byCodec(records []record) [][]record {
	var runs [][]record
	for i, r := range records {
		if i == 0 || r.Codec != records[i-1].Codec {
			runs = append(runs, nil)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], r)
	}
	return runs
}
