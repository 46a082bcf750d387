package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaderBalancer reports each assignment it computes: franz-go asks for a member balancer on the leader only.
type leaderBalancer struct {
	kgo.GroupBalancer
}

func (l leaderBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	emit("leader", map[string]any{"protocol": l.ProtocolName(), "members": len(members)})
	return l.GroupBalancer.MemberBalancer(members)
}

func franzBalancers(names []string) ([]kgo.GroupBalancer, error) {
	balancers := make([]kgo.GroupBalancer, 0, len(names))
	for _, name := range names {
		switch name {
		case "range":
			balancers = append(balancers, leaderBalancer{kgo.RangeBalancer()})
		case "roundrobin":
			balancers = append(balancers, leaderBalancer{kgo.RoundRobinBalancer()})
		case "cooperative-sticky":
			balancers = append(balancers, leaderBalancer{kgo.CooperativeStickyBalancer()})
		default:
			return nil, fmt.Errorf("unknown balancer %q", name)
		}
	}
	return balancers, nil
}

func franzHeaders(in []kgo.RecordHeader) []header {
	headers := make([]header, 0, len(in))
	for _, h := range in {
		headers = append(headers, header{Key: h.Key, Value: stringOrNil(h.Value)})
	}
	return headers
}

func consumeFranz(ctx context.Context, o consumeOptions) error {
	balancers, err := franzBalancers(o.strategies)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.brokers...),
		kgo.ClientID(o.clientID),
		kgo.ConsumerGroup(o.group),
		kgo.ConsumeTopics(o.topics...),
		kgo.Balancers(balancers...),
		kgo.SessionTimeout(sessionTimeout),
		kgo.HeartbeatInterval(heartbeatInterval),
		kgo.RebalanceTimeout(rebalanceTimeout),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Commit only what was reported (marked), and hold rebalances while a poll's records are handled, so
		// the marks are committed before the partitions go to another member.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(commitInterval),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
			memberID, generation := cl.GroupMetadata()
			for _, partitions := range assigned {
				sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
			}
			emit("assigned", map[string]any{"memberId": memberID, "generation": generation, "partitions": assigned})
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				emit("error", map[string]any{"message": "commit on revoke: " + err.Error()})
			}
			_, generation := cl.GroupMetadata()
			emit("revoked", map[string]any{"generation": generation})
		}),
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			emit("error", map[string]any{"message": fmt.Sprintf("fetch %s[%d]: %v", topic, partition, err)})
		})
		fetches.EachRecord(func(r *kgo.Record) {
			emit("record", map[string]any{
				"topic": r.Topic, "partition": r.Partition, "offset": r.Offset,
				"key": stringOrNil(r.Key), "value": stringOrNil(r.Value), "headers": franzHeaders(r.Headers),
			})
			cl.MarkCommitRecords(r)
		})
		cl.AllowRebalance()
	}
	// Close commits the marked offsets (revoke callback) and leaves the group.
	cl.Close()
	return nil
}

func franzCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("unknown codec %q", name)
}

func produceFranz(ctx context.Context, brokers []string, topic string, records []record) error {
	for _, run := range byCodec(records) {
		codec, err := franzCodec(run[0].Codec)
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(brokers...),
			kgo.ClientID("interop-go-franz-producer"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchCompression(codec),
		)
		if err != nil {
			return err
		}
		batch := make([]*kgo.Record, 0, len(run))
		for _, r := range run {
			rec := &kgo.Record{Topic: topic, Partition: r.Partition, Key: bytesOrNil(r.Key), Value: bytesOrNil(r.Value)}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: bytesOrNil(h.Value)})
			}
			batch = append(batch, rec)
		}
		results := cl.ProduceSync(ctx, batch...)
		cl.Close()
		if err := results.FirstErr(); err != nil {
			return err
		}
		for _, result := range results {
			emit("produced", map[string]any{"partition": result.Record.Partition, "offset": result.Record.Offset, "codec": run[0].Codec})
		}
	}
	return nil
}

// codecNames are Kafka's compression attribute values.
var codecNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// readFranz reads a topic from the start (no group) and reports every record with the codec of the record batch
// it came in: the proof that a producer really compressed what it wrote.
func readFranz(ctx context.Context, brokers []string, topic string, count int) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("interop-go-reader"),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(fetchMaxWait),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for seen := 0; seen < count; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read %d of %d records of %s: %w", seen, count, topic, ctx.Err())
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) { fetchErr = fmt.Errorf("fetch %s[%d]: %w", t, p, err) })
		if fetchErr != nil {
			return fetchErr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			seen++
			codec := "unknown"
			if c := int(r.Attrs.CompressionType()); c < len(codecNames) {
				codec = codecNames[c]
			}
			emit("record", map[string]any{
				"topic": r.Topic, "partition": r.Partition, "offset": r.Offset, "codec": codec,
				"key": stringOrNil(r.Key), "value": stringOrNil(r.Value), "headers": franzHeaders(r.Headers),
			})
		})
	}
	return nil
}
