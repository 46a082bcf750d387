package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"
)

// The broker is Kafka 4.x; sarama picks request versions up to this one.
var saramaVersion = sarama.V3_6_0_0

// leaderReporting reports each assignment it computes: sarama calls Plan on the group leader only.
type leaderReporting struct {
	sarama.BalanceStrategy
}

func (l leaderReporting) Plan(members map[string]sarama.ConsumerGroupMemberMetadata, topics map[string][]int32) (sarama.BalanceStrategyPlan, error) {
	emit("leader", map[string]any{"protocol": l.Name(), "members": len(members)})
	return l.BalanceStrategy.Plan(members, topics)
}

func saramaStrategies(names []string) ([]sarama.BalanceStrategy, error) {
	strategies := make([]sarama.BalanceStrategy, 0, len(names))
	for _, name := range names {
		switch name {
		case "range":
			strategies = append(strategies, leaderReporting{sarama.NewBalanceStrategyRange()})
		case "roundrobin":
			strategies = append(strategies, leaderReporting{sarama.NewBalanceStrategyRoundRobin()})
		default:
			return nil, fmt.Errorf("unknown strategy %q", name)
		}
	}
	return strategies, nil
}

type saramaHandler struct{}

func (saramaHandler) Setup(session sarama.ConsumerGroupSession) error {
	emit("assigned", map[string]any{
		"memberId": session.MemberID(), "generation": session.GenerationID(), "partitions": sortedClaims(session.Claims()),
	})
	return nil
}

func (saramaHandler) Cleanup(session sarama.ConsumerGroupSession) error {
	// Eager protocol: everything is revoked; sarama commits the marked offsets after Cleanup.
	emit("revoked", map[string]any{"generation": session.GenerationID()})
	return nil
}

func (saramaHandler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			headers := make([]header, 0, len(msg.Headers))
			for _, h := range msg.Headers {
				headers = append(headers, header{Key: string(h.Key), Value: stringOrNil(h.Value)})
			}
			emit("record", map[string]any{
				"topic": msg.Topic, "partition": msg.Partition, "offset": msg.Offset,
				"key": stringOrNil(msg.Key), "value": stringOrNil(msg.Value), "headers": headers,
			})
			session.MarkMessage(msg, "")
		case <-session.Context().Done():
			return nil
		}
	}
}

func sortedClaims(claims map[string][]int32) map[string][]int32 {
	for _, partitions := range claims {
		sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
	}
	return claims
}

func consumeSarama(ctx context.Context, o consumeOptions) error {
	config := sarama.NewConfig()
	config.Version = saramaVersion
	config.ClientID = o.clientID
	config.Consumer.Return.Errors = true
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.AutoCommit.Interval = commitInterval
	config.Consumer.MaxWaitTime = fetchMaxWait
	config.Consumer.Group.Session.Timeout = sessionTimeout
	config.Consumer.Group.Heartbeat.Interval = heartbeatInterval
	config.Consumer.Group.Rebalance.Timeout = rebalanceTimeout
	config.Consumer.Group.Rebalance.Retry.Backoff = 200 * time.Millisecond
	strategies, err := saramaStrategies(o.strategies)
	if err != nil {
		return err
	}
	config.Consumer.Group.Rebalance.GroupStrategies = strategies

	group, err := sarama.NewConsumerGroup(o.brokers, o.group, config)
	if err != nil {
		return err
	}
	go func() {
		for err := range group.Errors() {
			emit("error", map[string]any{"message": err.Error()})
		}
	}()
	for ctx.Err() == nil {
		// Consume returns at every rebalance; it is called again to rejoin (sarama's documented loop).
		if err := group.Consume(ctx, o.topics, saramaHandler{}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			emit("error", map[string]any{"message": err.Error()})
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	// Close commits what was marked and leaves the group.
	return group.Close()
}

func saramaCodec(name string) (sarama.CompressionCodec, error) {
	switch name {
	case "", "none":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return 0, fmt.Errorf("unknown codec %q", name)
}

func produceSarama(_ context.Context, brokers []string, topic string, records []record) error {
	for _, run := range byCodec(records) {
		codec, err := saramaCodec(run[0].Codec)
		if err != nil {
			return err
		}
		config := sarama.NewConfig()
		config.Version = saramaVersion
		config.ClientID = "interop-go-sarama-producer"
		config.Producer.Return.Successes = true
		config.Producer.RequiredAcks = sarama.WaitForAll
		config.Producer.Partitioner = sarama.NewManualPartitioner
		config.Producer.Compression = codec
		// One run, one request: the batch holds every record of the run, compressed together.
		config.Producer.Flush.Messages = len(run)
		config.Producer.Flush.Frequency = 500 * time.Millisecond
		producer, err := sarama.NewSyncProducer(brokers, config)
		if err != nil {
			return err
		}
		messages := make([]*sarama.ProducerMessage, 0, len(run))
		for _, r := range run {
			m := &sarama.ProducerMessage{Topic: topic, Partition: r.Partition}
			if r.Key != nil {
				m.Key = sarama.ByteEncoder(*r.Key)
			}
			if r.Value != nil {
				m.Value = sarama.ByteEncoder(*r.Value)
			}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: bytesOrNil(h.Value)})
			}
			messages = append(messages, m)
		}
		sendErr := producer.SendMessages(messages)
		closeErr := producer.Close()
		var failures sarama.ProducerErrors
		if errors.As(sendErr, &failures) && len(failures) > 0 {
			return fmt.Errorf("%d of %d records failed, the first: %w", len(failures), len(run), failures[0].Err)
		}
		if sendErr != nil {
			return sendErr
		}
		if closeErr != nil {
			return closeErr
		}
		for _, m := range messages {
			emit("produced", map[string]any{"partition": m.Partition, "offset": m.Offset, "codec": codec.String()})
		}
	}
	return nil
}
