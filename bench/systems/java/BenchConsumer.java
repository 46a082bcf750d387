/*
 * System j of the benchmark: a plain Java consumer (kafka-clients from the broker's own jars), the JVM reference the
 * Node systems are compared with. Compiled and started by bench/systems/j-java.mjs (javac at bench time, cached).
 *
 *   java -cp <classes>:<.kafka/lib/*> BenchConsumer '<job JSON>'
 *
 * The job is the one the Node systems get (bench/run.mjs): brokers, groupId, topic, kind, total, first and last
 * offsets, consumer settings; plus `warmupMessages` (see warmUp). The loop is what a Spring Kafka listener container runs by default (one consumer
 * thread, AckMode BATCH with synchronous commits): poll, handle each record (parse the JSON with Jackson, read the
 * fields the Node handlers read), commitSync the offsets after the poll's records.
 *
 * The recording mirrors bench/lib/child.mjs's Tracker.record: the same counters and marks, which the Node side then
 * checks with the same Tracker.verify. stdout, one line each (Kafka's own logging goes to stderr):
 *   READY                   subscribed; the first poll joins the group
 *   RESULT <json>           timings, CPU, peak RSS, checksum, the offsets and seqs seen (base64), latencies
 *   STOPPED <json>          {"outcome": "ok" | "stop failed: ...", "stopMs": n}: closed, left the group
 *   ERROR <message>         then exit 1
 */

import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import javax.management.NotificationEmitter;
import javax.management.openmbean.CompositeData;

import com.sun.management.GarbageCollectionNotificationInfo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;

public class BenchConsumer {
  private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final JsonNode job;
  private final boolean latencyJob;
  private final long total;
  private final Map<Integer, Long> firstOffsets = new HashMap<>();
  private final Map<Integer, Long> lastOffsets = new HashMap<>();
  private final Map<Integer, byte[]> seenOffsets = new HashMap<>();
  private final byte[] seenSeqs;
  private final double[] latencies;
  private int latencyCount;
  /**
   * Latency job: per measured record the marks of bench/lib/latency-probe.mjs (sent, broker append, the poll that
   * returned it: call and return, handler), the commitSync windows and the GC pauses, in epoch milliseconds.
   */
  private final double[][] marks;
  private double pollStartMs;
  private double pollEndMs;
  private final List<double[]> commitWindows = new ArrayList<>();
  private final List<double[]> gcPauses = new ArrayList<>();
  private final boolean[] partitionDone;
  private int partitionsLeft;
  private long count;
  private long unexpected;
  private double checksum;
  private long firstAtNs;
  private long lastAtNs;
  private long cpuAtFirstNs;
  private long[] cpuTicksAtFirst;
  private double startToFirstMessageMs;
  private long jitMsAtFirst;
  private long gcMsAtFirst;
  private long commits;
  private long commitNs;
  private boolean complete;

  BenchConsumer(JsonNode job) {
    this.job = job;
    this.latencyJob = "latency".equals(job.path("kind").asText());
    this.total = job.path("total").asLong();
    int maxPartition = -1;
    for (Iterator<Map.Entry<String, JsonNode>> it = job.path("lastOffsets").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> entry = it.next();
      int partition = Integer.parseInt(entry.getKey());
      long last = Long.parseLong(entry.getValue().asText());
      long first = Long.parseLong(job.path("firstOffsets").path(entry.getKey()).asText("0"));
      lastOffsets.put(partition, last);
      firstOffsets.put(partition, first);
      seenOffsets.put(partition, new byte[(int) (last - first + 1)]);
      maxPartition = Math.max(maxPartition, partition);
    }
    this.partitionDone = new boolean[maxPartition + 1];
    this.partitionsLeft = lastOffsets.size();
    this.seenSeqs = job.has("lastOffsets") ? new byte[(int) total] : null;
    this.latencies = latencyJob ? new double[(int) total] : null;
    this.marks = latencyJob ? new double[5][(int) total] : null;
    if (latencyJob) watchGcPauses();
  }

  /** Each stop-the-world collection (not the concurrent cycles), as [start, end] in epoch milliseconds. */
  private void watchGcPauses() {
    double jvmStartMs = ManagementFactory.getRuntimeMXBean().getStartTime();
    for (var gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      if (!(gc instanceof NotificationEmitter emitter)) continue;
      emitter.addNotificationListener((notification, handback) -> {
        if (!GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION.equals(notification.getType())) return;
        var info = GarbageCollectionNotificationInfo.from((CompositeData) notification.getUserData());
        if (info.getGcName().contains("Concurrent")) return;
        var gcInfo = info.getGcInfo();
        synchronized (gcPauses) {
          gcPauses.add(new double[] {jvmStartMs + gcInfo.getStartTime(), jvmStartMs + gcInfo.getEndTime()});
        }
      }, null, null);
    }
  }

  static synchronized void emit(String line) {
    OUT.println(line);
    OUT.flush();
  }

  /** Epoch milliseconds with microsecond resolution, comparable with the producer's `sentAt` on this machine. */
  private static double epochMs() {
    Instant now = Instant.now();
    return now.getEpochSecond() * 1000.0 + now.getNano() / 1_000_000.0;
  }

  private static long processCpuNs() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  /** utime and stime of this process in clock ticks (/proc/self/stat fields 14 and 15). */
  private static long[] cpuTicks() {
    try {
      String stat = Files.readString(Path.of("/proc/self/stat"));
      String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return new long[] {Long.parseLong(fields[11]), Long.parseLong(fields[12])};
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  /** Time the JIT compilers spent so far (part of the process CPU time, large in a young JVM). */
  private static long jitMs() {
    return ManagementFactory.getCompilationMXBean().getTotalCompilationTime();
  }

  private static long gcMs() {
    long total = 0;
    for (var gc : ManagementFactory.getGarbageCollectorMXBeans()) total += Math.max(0, gc.getCollectionTime());
    return total;
  }

  /** Peak resident set size in bytes (VmHWM), the figure Node's resourceUsage().maxRSS reports. */
  private static long peakRssBytes() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux: reported as unknown.
    }
    return -1;
  }

  /** Tracker.record of bench/lib/child.mjs, field for field. */
  void record(int partition, long offset, JsonNode flight, long timestamp) {
    long now = System.nanoTime();
    if (count++ == 0) {
      firstAtNs = now;
      cpuAtFirstNs = processCpuNs();
      cpuTicksAtFirst = cpuTicks();
      startToFirstMessageMs = ManagementFactory.getRuntimeMXBean().getUptime();
      jitMsAtFirst = jitMs();
      gcMsAtFirst = gcMs();
    }
    checksum += flight.path("alt").asDouble(Double.NaN);
    if (latencyJob) {
      if (!flight.path("warm").asBoolean(false) && latencyCount < latencies.length) {
        double at = epochMs();
        double sentAt = flight.path("sentAt").asDouble();
        int i = latencyCount++;
        latencies[i] = at - sentAt;
        marks[0][i] = sentAt;
        marks[1][i] = timestamp;
        marks[2][i] = pollStartMs;
        marks[3][i] = pollEndMs;
        marks[4][i] = at;
      }
      if (count >= total) finish(now);
      return;
    }
    byte[] seen = seenOffsets.get(partition);
    long index = offset - firstOffsets.getOrDefault(partition, 0L);
    if (seen != null && index >= 0 && index < seen.length) {
      if ((seen[(int) index] & 0xff) < 255) seen[(int) index]++;
    } else {
      unexpected++;
    }
    JsonNode seqNode = flight.path("seq");
    long seq = seqNode.isNumber() ? seqNode.asLong() : -1;
    if (seq >= 0 && seq < seenSeqs.length) {
      if ((seenSeqs[(int) seq] & 0xff) < 255) seenSeqs[(int) seq]++;
    } else {
      unexpected++;
    }
    Long last = lastOffsets.get(partition);
    if (last != null && offset == last && !partitionDone[partition]) {
      partitionDone[partition] = true;
      if (--partitionsLeft == 0) finish(now);
    }
  }

  private void finish(long now) {
    if (complete) return;
    complete = true;
    lastAtNs = now;
  }

  ObjectNode result() {
    long cpuNs = processCpuNs() - cpuAtFirstNs;
    long[] ticks = cpuTicks();
    double firstToLastMs = (lastAtNs - firstAtNs) / 1_000_000.0;
    ObjectNode result = JSON.createObjectNode();
    result.put("messages", count);
    result.put("expected", total);
    result.put("firstToLastMs", firstToLastMs);
    result.put("msgsPerSec", firstToLastMs > 0 ? count / (firstToLastMs / 1000) : 0);
    result.put("startToFirstMessageMs", startToFirstMessageMs);
    if (ticks != null && cpuTicksAtFirst != null) {
      // Linux clock ticks are 10 ms (USER_HZ 100); the total below comes from the JVM in nanoseconds.
      result.put("cpuUserMs", (ticks[0] - cpuTicksAtFirst[0]) * 10.0);
      result.put("cpuSystemMs", (ticks[1] - cpuTicksAtFirst[1]) * 10.0);
    }
    result.put("cpuUsPerMsg", count > 0 ? cpuNs / 1000.0 / count : 0);
    result.put("peakRss", peakRssBytes());
    // Where a young JVM's time goes: JIT compilation and GC (both inside the CPU time above) and the synchronous
    // commits after each poll (wall-clock time the loop waited for the group coordinator).
    ObjectNode jvm = result.putObject("jvm");
    jvm.put("jitCompileMs", jitMs() - jitMsAtFirst);
    jvm.put("gcMs", gcMs() - gcMsAtFirst);
    jvm.put("commits", commits);
    jvm.put("commitWaitMs", commitNs / 1_000_000.0);
    result.put("checksum", checksum);
    result.put("unexpected", unexpected);
    if (seenSeqs != null) {
      ObjectNode offsets = result.putObject("seenOffsets");
      seenOffsets.forEach((p, seen) -> offsets.put(String.valueOf(p), Base64.getEncoder().encodeToString(seen)));
      result.put("seenSeqs", Base64.getEncoder().encodeToString(seenSeqs));
    }
    if (latencies != null) {
      ArrayNode values = result.putArray("latencies");
      for (int i = 0; i < latencyCount; i++) values.add(latencies[i]);
      ObjectNode probe = result.putObject("latencyMarks");
      String[] names = {"sent", "append", "fetchStart", "fetchEnd", "handler"};
      for (int m = 0; m < names.length; m++) {
        ArrayNode column = probe.putArray(names[m]);
        for (int i = 0; i < latencyCount; i++) column.add(marks[m][i]);
      }
      ArrayNode requests = probe.putArray("requests");
      for (double[] w : commitWindows) requests.addObject().put("api", "OffsetCommit").put("startAt", w[0]).put("endAt", w[1]);
      ArrayNode gcs = probe.putArray("gcs");
      synchronized (gcPauses) {
        for (double[] w : gcPauses) gcs.addObject().put("kind", "pause").put("startAt", w[0]).put("endAt", w[1]);
      }
    }
    return result;
  }

  /** Kafka's logging to stderr at WARN, so stdout carries only the lines above. */
  private static void quietLogging() {
    ConfigurationBuilder<BuiltConfiguration> builder = ConfigurationBuilderFactory.newConfigurationBuilder();
    builder.setStatusLevel(Level.ERROR);
    builder.add(builder.newAppender("stderr", "Console")
        .addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
        .add(builder.newLayout("PatternLayout").addAttribute("pattern", "%d{HH:mm:ss.SSS} %-5level %c{1} - %msg%n")));
    builder.add(builder.newRootLogger(Level.WARN).add(builder.newAppenderRef("stderr")));
    Configurator.initialize(builder.build());
  }

  /** The Node systems' settings (bench/lib/settings.mjs CONSUMER_TUNING and CLIENT_RETRY) in Java's names. */
  private Properties properties() {
    JsonNode c = job.path("consumer");
    JsonNode retry = job.path("clientRetry");
    List<String> brokers = new ArrayList<>();
    job.path("brokers").forEach(b -> brokers.add(b.asText()));
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, String.join(",", brokers));
    props.put(ConsumerConfig.GROUP_ID_CONFIG, job.path("groupId").asText());
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, "bench-j");
    props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
    // The protocols the Node members advertise first (kafkajs and this library: range, then roundrobin).
    props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, List.of(RangeAssignor.class, RoundRobinAssignor.class));
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
    props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, c.path("maxWaitTimeInMs").asText());
    props.put(ConsumerConfig.FETCH_MIN_BYTES_CONFIG, c.path("minBytes").asText());
    props.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, c.path("maxBytes").asText());
    props.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, c.path("maxBytesPerPartition").asText());
    props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, c.path("sessionTimeout").asText());
    props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, c.path("heartbeatInterval").asText());
    // Java's rebalance timeout is max.poll.interval.ms.
    props.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, c.path("rebalanceTimeout").asText());
    props.put(ConsumerConfig.RETRY_BACKOFF_MS_CONFIG, retry.path("initialRetryTime").asText("100"));
    props.put(ConsumerConfig.RETRY_BACKOFF_MAX_MS_CONFIG, retry.path("maxRetryTime").asText("1000"));
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    return props;
  }

  /** The loop: poll, handle each record, commitSync the poll's offsets; until complete or `limit` records. */
  private void consume(KafkaConsumer<byte[], byte[]> consumer, long limit) throws IOException {
    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
    while (!complete && count < limit) {
      double pollStart = latencyJob ? epochMs() : 0;
      ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
      if (records.isEmpty()) continue;
      if (latencyJob) {
        pollStartMs = pollStart;
        pollEndMs = epochMs();
      }
      offsets.clear();
      for (ConsumerRecord<byte[], byte[]> record : records) {
        record(record.partition(), record.offset(), JSON.readTree(record.value()), record.timestamp());
        offsets.put(new TopicPartition(record.topic(), record.partition()), new OffsetAndMetadata(record.offset() + 1));
      }
      long commitStarted = System.nanoTime();
      double commitStartMs = latencyJob ? epochMs() : 0;
      consumer.commitSync(offsets);
      commits++;
      commitNs += System.nanoTime() - commitStarted;
      if (latencyJob) commitWindows.add(new double[] {commitStartMs, epochMs()});
    }
  }

  /**
   * A service's JVM has compiled its hot paths long before; a fresh one spends seconds of CPU in the JIT compilers.
   * So a throughput job first runs the same loop over the same topic in another group (`<groupId>-warmup`, deleted
   * by the orchestrator), `messages` records, and discards what it measured.
   */
  static void warmUp(JsonNode job, long messages) throws IOException {
    ObjectNode warmJob = job.deepCopy();
    warmJob.put("groupId", job.path("groupId").asText() + "-warmup");
    BenchConsumer warm = new BenchConsumer(warmJob);
    KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(warm.properties());
    try {
      consumer.subscribe(List.of(job.path("topic").asText()));
      warm.consume(consumer, messages);
    } finally {
      consumer.close(CloseOptions.timeout(Duration.ofSeconds(10))
          .withGroupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP));
    }
  }

  void run() throws IOException {
    String topic = job.path("topic").asText();
    KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(properties());
    try {
      consumer.subscribe(List.of(topic));
      emit("READY");
      consume(consumer, Long.MAX_VALUE);
      emit("RESULT " + JSON.writeValueAsString(result()));
    } catch (RuntimeException | IOException e) {
      consumer.close(CloseOptions.timeout(Duration.ofSeconds(5)));
      throw e;
    }
    long stopStarted = System.nanoTime();
    String outcome = "ok";
    try {
      consumer.close(CloseOptions.timeout(Duration.ofSeconds(30))
          .withGroupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP));
    } catch (RuntimeException e) {
      outcome = "stop failed: " + e.getMessage();
    }
    ObjectNode stopped = JSON.createObjectNode();
    stopped.put("outcome", outcome);
    stopped.put("stopMs", (System.nanoTime() - stopStarted) / 1_000_000.0);
    emit("STOPPED " + JSON.writeValueAsString(stopped));
  }

  public static void main(String[] args) {
    quietLogging();
    try {
      JsonNode job = JSON.readTree(args[0]);
      long warmupMessages = job.path("warmupMessages").asLong(0);
      if (warmupMessages > 0) warmUp(job, warmupMessages);
      new BenchConsumer(job).run();
    } catch (Exception e) {
      e.printStackTrace();
      emit("ERROR " + e.toString().replace('\n', ' '));
      System.exit(1);
    }
  }
}
