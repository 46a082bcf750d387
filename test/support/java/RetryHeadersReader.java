/*
 * Reads retry or dead-letter topics from their start with a plain Java consumer and decodes Spring Kafka's retry
 * headers exactly as spring-kafka does (test/retry-topics.e2e-spec.ts):
 *   retry_topic-attempts           DeadLetterPublishingRecovererFactory.getAttempts: lastHeader, 1 byte unsigned
 *                                  or 4 bytes ByteBuffer.getInt(), within 1..Short.MAX_VALUE, else 1
 *   retry_topic-backoff-timestamp  KafkaBackoffAwareMessageListenerAdapter: new BigInteger(lastHeader).longValue()
 *   retry_topic-original-timestamp DeadLetterPublishingRecovererFactory: new BigInteger(lastHeader).longValue()
 *
 *   java -cp '.kafka/lib/*' test/support/java/RetryHeadersReader.java <brokers> <topic,topic,...> <count>
 *
 * stdout: one line per record, "RECORD <topic> <partition> <offset> <key> <attempts> <backoff> <original> <values>", where
 * <values> is how many retry_topic-attempts headers the record carries; then "DONE". Errors on stderr, exit 1.
 */

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.UUID;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

public class RetryHeadersReader {
  public static void main(String[] args) {
    String brokers = args[0];
    List<String> topics = List.of(args[1].split(","));
    int count = Integer.parseInt(args[2]);
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(ConsumerConfig.GROUP_ID_CONFIG, "retry-headers-reader-" + UUID.randomUUID());
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    int seen = 0;
    long deadline = System.currentTimeMillis() + 60_000;
    try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(props)) {
      consumer.subscribe(topics);
      while (seen < count && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(200))) {
          int values = 0;
          for (Header ignored : record.headers().headers("retry_topic-attempts")) values++;
          System.out.println("RECORD " + record.topic() + " " + record.partition() + " " + record.offset() + " " + record.key() + " "
              + attempts(record) + " " + bigInteger(record, "retry_topic-backoff-timestamp") + " "
              + bigInteger(record, "retry_topic-original-timestamp") + " " + values);
          seen++;
        }
      }
    }
    if (seen < count) {
      System.err.println("read " + seen + " of " + count + " record(s) of " + topics);
      System.exit(1);
    }
    System.out.println("DONE");
  }

  private static int attempts(ConsumerRecord<String, byte[]> record) {
    Header header = record.headers().lastHeader("retry_topic-attempts");
    if (header == null) return 1;
    byte[] value = header.value();
    int raw;
    if (value.length == Byte.BYTES) raw = Byte.toUnsignedInt(value[0]);
    else if (value.length == Integer.BYTES) raw = ByteBuffer.wrap(value).getInt();
    else return 1;
    return raw >= 1 && raw <= Short.MAX_VALUE ? raw : 1;
  }

  private static String bigInteger(ConsumerRecord<String, byte[]> record, String name) {
    Header header = record.headers().lastHeader(name);
    if (header == null || header.value() == null || header.value().length == 0 || header.value().length > Long.BYTES) {
      return "-";
    }
    return String.valueOf(new BigInteger(header.value()).longValue());
  }
}
