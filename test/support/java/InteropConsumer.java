/*
 * A plain Java Kafka consumer for the interop e2e spec (test/interop.e2e-spec.ts): it joins a consumer group next to
 * NestJS members with the classic group protocol and the assignors Java and this library share (range, roundrobin).
 *
 * Single-file source launch, no build tool (Java 17+), with the broker's kafka-clients jar (4.1+: CloseOptions):
 *
 *   java -cp '.kafka/lib/*' test/support/java/InteropConsumer.java <brokers> <groupId> <topics> [maxRuntimeMs] [clientId]
 *       [strategies] [groupInstanceId] [groupProtocol]
 *
 * topics: comma-separated, all subscribed; REVOKED and ASSIGNED list the partitions of the first one (<topic>).
 * strategies: comma-separated protocol names in order of preference, of range, roundrobin and cooperative-sticky
 * (default "range,roundrobin"; Java's own default is [range, cooperative-sticky]).
 * groupInstanceId: makes it a static member (group.instance.id); "-" or absent: a dynamic member.
 * groupProtocol: group.protocol, classic (default) or consumer (KIP-848: the broker assigns; strategies, session
 *   and heartbeat settings are not sent, and ASSIGNED lists the whole assignment after each change).
 *
 * stdout, one line per event (everything else, including Kafka's own logging, goes to stderr):
 *   STARTED <clientId>
 *   LEADER <protocol> <members>                 this member computed the group's assignment (it is the leader)
 *   REVOKED <p,p,...|->                         partitions of <topic> revoked (eager protocols: all of them)
 *   ASSIGNED <p,p,...|-> <memberId>             partitions of <topic> assigned ("-" when none)
 *   RECORD <partition> <offset> <key|-> <value> one processed record; the value is the rest of the line
 *   COMMITTED <p>:<offset>,...                  commitSync after processing a poll's records
 *   EXIT <reason>                               closed (left the group); reason: signal or max-runtime
 *
 * Exits 0 on SIGTERM or SIGINT (wakeup, then close, which leaves the group) or after maxRuntimeMs (default 120000);
 * exits 1 (after printing ERROR) if the consumer fails.
 */

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;

import sun.misc.Signal;

public class InteropConsumer {
  /** stdout carries only the protocol lines above; synchronized so the rebalance listener and loop never interleave. */
  private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

  static synchronized void emit(String line) {
    OUT.println(line);
    OUT.flush();
  }

  /** Java's RangeAssignor ("range"), reporting when this member is the leader that assigns. */
  public static class ReportingRangeAssignor extends RangeAssignor {
    @Override
    public GroupAssignment assign(Cluster metadata, GroupSubscription groupSubscription) {
      emit("LEADER " + name() + " " + groupSubscription.groupSubscription().size());
      return super.assign(metadata, groupSubscription);
    }
  }

  /** Java's RoundRobinAssignor ("roundrobin"), reporting when this member is the leader that assigns. */
  public static class ReportingRoundRobinAssignor extends RoundRobinAssignor {
    @Override
    public GroupAssignment assign(Cluster metadata, GroupSubscription groupSubscription) {
      emit("LEADER " + name() + " " + groupSubscription.groupSubscription().size());
      return super.assign(metadata, groupSubscription);
    }
  }

  /** Kafka's logging to stderr at WARN, so stdout stays parseable. */
  private static void quietLogging() {
    ConfigurationBuilder<BuiltConfiguration> builder = ConfigurationBuilderFactory.newConfigurationBuilder();
    builder.setStatusLevel(Level.ERROR);
    builder.add(builder.newAppender("stderr", "Console")
        .addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
        .add(builder.newLayout("PatternLayout").addAttribute("pattern", "%d{HH:mm:ss.SSS} %-5level %c{1} - %msg%n")));
    builder.add(builder.newRootLogger(Level.toLevel(System.getenv().getOrDefault("INTEROP_LOG_LEVEL", "WARN")))
        .add(builder.newAppenderRef("stderr")));
    Configurator.initialize(builder.build());
  }

  private static String partitions(Collection<TopicPartition> partitions, String topic) {
    String list = partitions.stream().filter(tp -> tp.topic().equals(topic)).map(TopicPartition::partition).sorted()
        .map(String::valueOf).collect(Collectors.joining(","));
    return list.isEmpty() ? "-" : list;
  }

  /** Close that leaves the group at once, so the other members take the partitions without a session timeout. */
  private static CloseOptions leaving(Duration timeout) {
    return CloseOptions.timeout(timeout).withGroupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP);
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: InteropConsumer <brokers> <groupId> <topics> [maxRuntimeMs] [clientId] [strategies] [groupInstanceId]");
      System.exit(2);
    }
    quietLogging();
    String brokers = args[0];
    String groupId = args[1];
    List<String> topics = List.of(args[2].split(","));
    String topic = topics.get(0);
    long maxRuntimeMs = args.length > 3 ? Long.parseLong(args[3]) : 120_000L;
    String clientId = args.length > 4 ? args[4] : "interop-java";
    List<Class<?>> strategies = new ArrayList<>();
    for (String strategy : (args.length > 5 ? args[5] : "range,roundrobin").split(",")) {
      switch (strategy.trim()) {
        case "range" -> strategies.add(ReportingRangeAssignor.class);
        case "roundrobin" -> strategies.add(ReportingRoundRobinAssignor.class);
        case "cooperative-sticky" -> strategies.add(CooperativeStickyAssignor.class);
        default -> {
          System.err.println("unknown strategy " + strategy + " (range, roundrobin, cooperative-sticky)");
          System.exit(2);
        }
      }
    }

    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
    boolean classic = args.length <= 7 || args[7].equals("classic");
    props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, classic ? "classic" : args[7]);
    if (classic) {
      // Java's default is [range, cooperative-sticky]; [range, roundrobin] overlaps with what the Nest members advertise.
      props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, strategies);
      props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
      props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
    }
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());

    if (args.length > 6 && !args[6].equals("-")) {
      props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, args[6]);
    }

    KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
    CountDownLatch closed = new CountDownLatch(1);
    final boolean[] signalled = {false};
    // SIGTERM/SIGINT: wake the loop, which closes the consumer (leaving the group) and returns from main: exit 0.
    for (String name : List.of("TERM", "INT")) {
      Signal.handle(new Signal(name), signal -> {
        synchronized (signalled) {
          signalled[0] = true;
        }
        consumer.wakeup();
      });
    }
    // Any other JVM shutdown: still wake the loop and wait (bounded) for the close.
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      synchronized (signalled) {
        signalled[0] = true;
      }
      consumer.wakeup();
      try {
        // Let the loop close the consumer (and leave the group) before the JVM halts.
        closed.await(15, TimeUnit.SECONDS);
      } catch (InterruptedException ignored) {
        Thread.currentThread().interrupt();
      }
    }, "interop-shutdown"));

    String reason = "max-runtime";
    long deadline = System.currentTimeMillis() + maxRuntimeMs;
    try {
      consumer.subscribe(topics, new ConsumerRebalanceListener() {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
          emit("REVOKED " + partitions(revoked, topic));
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> assigned) {
          // Incremental (consumer protocol): `assigned` is what was added; the whole assignment is reported.
          emit("ASSIGNED " + partitions(classic ? assigned : consumer.assignment(), topic) + " "
              + consumer.groupMetadata().memberId());
        }
      });
      emit("STARTED " + clientId);
      while (System.currentTimeMillis() < deadline) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        if (records.isEmpty()) continue;
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (ConsumerRecord<String, String> record : records) {
          emit("RECORD " + record.partition() + " " + record.offset() + " "
              + (record.key() == null ? "-" : record.key()) + " " + record.value());
          offsets.put(new TopicPartition(record.topic(), record.partition()), new OffsetAndMetadata(record.offset() + 1));
        }
        consumer.commitSync(offsets);
        List<String> committed = new ArrayList<>();
        offsets.forEach((tp, om) -> committed.add(tp.partition() + ":" + om.offset()));
        emit("COMMITTED " + String.join(",", committed));
      }
    } catch (WakeupException e) {
      reason = "signal";
    } catch (Exception e) {
      boolean bySignal;
      synchronized (signalled) {
        bySignal = signalled[0];
      }
      if (!bySignal) {
        e.printStackTrace();
        emit("ERROR " + e);
        consumer.close(leaving(Duration.ofSeconds(5)));
        closed.countDown();
        System.exit(1);
      }
      reason = "signal";
    }
    try {
      consumer.close(leaving(Duration.ofSeconds(10)));
    } finally {
      emit("EXIT " + reason);
      closed.countDown();
    }
  }
}
