import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.kafka.listener.KafkaMessageListenerContainer;
import org.springframework.kafka.listener.MessageListener;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.kafka.support.converter.MessagingMessageConverter;
import org.springframework.messaging.MessageHeaders;
import org.springframework.util.backoff.FixedBackOff;

/**
 * Spring Kafka's own code against the library's dead letters (test/spring-admin-tools.e2e-spec.ts), no Spring Boot:
 *
 *   read    <brokers> <topic> <count> <group>  a KafkaMessageListenerContainer reads <count> records of a dead-letter
 *                                               topic; each record's headers go through Spring's MessagingMessageConverter
 *                                               (its header mapper) and are decoded as Spring's DeadLetterPublishingRecoverer
 *                                               writes them (ints and longs big-endian); one line "RECORD {json}" each.
 *   recover <brokers> <topic> <count> <group>  a container whose listener throws on every record of <topic>, with a
 *                                               DefaultErrorHandler (no retries) and Spring's DeadLetterPublishingRecoverer:
 *                                               Spring writes <count> dead letters to <topic>-dlt; "RECOVERED <offset>" each.
 *
 * Prints STARTED once the container runs, DONE when <count> records were handled; exits 2 on a timeout.
 */
public class SpringDeadLetters {
  private static final long TIMEOUT_MS = 90_000;

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    String brokers = args[1];
    String topic = args[2];
    int count = Integer.parseInt(args[3]);
    String group = args[4];
    CountDownLatch done = new CountDownLatch(count);

    Map<String, Object> consumerProps = Map.of(
        ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers,
        ConsumerConfig.GROUP_ID_CONFIG, group,
        ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
        ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class,
        ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    ContainerProperties properties = new ContainerProperties(topic);
    KafkaTemplate<byte[], byte[]> template = null;
    KafkaMessageListenerContainer<byte[], byte[]> container;

    if (mode.equals("read")) {
      MessagingMessageConverter converter = new MessagingMessageConverter();
      properties.setMessageListener((MessageListener<byte[], byte[]>) record -> {
        System.out.println("RECORD " + describe(record, converter.toMessage(record, null, null, null).getHeaders()));
        done.countDown();
      });
      container = new KafkaMessageListenerContainer<>(new DefaultKafkaConsumerFactory<>(consumerProps), properties);
    } else if (mode.equals("recover")) {
      template = new KafkaTemplate<>(new DefaultKafkaProducerFactory<>(Map.of(
          ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers,
          ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class,
          ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class)));
      DeadLetterPublishingRecoverer recoverer = new DeadLetterPublishingRecoverer(template);
      properties.setMessageListener((MessageListener<byte[], byte[]>) record -> {
        throw new IllegalStateException("spring refused " + new String(record.value(), StandardCharsets.UTF_8),
            new IllegalArgumentException("the root cause"));
      });
      container = new KafkaMessageListenerContainer<>(new DefaultKafkaConsumerFactory<>(consumerProps), properties);
      container.setCommonErrorHandler(new DefaultErrorHandler((record, exception) -> {
        recoverer.accept(record, exception);
        System.out.println("RECOVERED " + record.offset());
        done.countDown();
      }, new FixedBackOff(0L, 0L)));
    } else {
      throw new IllegalArgumentException("unknown mode " + mode);
    }

    container.start();
    System.out.println("STARTED");
    boolean finished = done.await(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    container.stop();
    if (template != null) template.getProducerFactory().reset();
    System.out.println(finished ? "DONE" : "TIMEOUT");
    System.out.flush();
    System.exit(finished ? 0 : 2);
  }

  /** The record as Spring's listener would see it: the converter's headers, decoded with Spring's encodings. */
  private static String describe(ConsumerRecord<byte[], byte[]> record, MessageHeaders headers) {
    StringBuilder json = new StringBuilder("{");
    field(json, "topic", quote(headers.get(KafkaHeaders.RECEIVED_TOPIC, String.class)));
    field(json, "partition", String.valueOf(headers.get(KafkaHeaders.RECEIVED_PARTITION, Integer.class)));
    field(json, "offset", String.valueOf(headers.get(KafkaHeaders.OFFSET, Long.class)));
    field(json, "key", quote(record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8)));
    field(json, "value", quote(record.value() == null ? null : new String(record.value(), StandardCharsets.UTF_8)));
    field(json, "originalTopic", quote(text(headers, KafkaHeaders.DLT_ORIGINAL_TOPIC)));
    field(json, "originalPartition", int32(headers, KafkaHeaders.DLT_ORIGINAL_PARTITION));
    field(json, "originalOffset", int64(headers, KafkaHeaders.DLT_ORIGINAL_OFFSET));
    field(json, "originalTimestamp", int64(headers, KafkaHeaders.DLT_ORIGINAL_TIMESTAMP));
    field(json, "originalTimestampType", quote(text(headers, KafkaHeaders.DLT_ORIGINAL_TIMESTAMP_TYPE)));
    field(json, "originalConsumerGroup", quote(text(headers, KafkaHeaders.DLT_ORIGINAL_CONSUMER_GROUP)));
    field(json, "exceptionFqcn", quote(text(headers, KafkaHeaders.DLT_EXCEPTION_FQCN)));
    field(json, "exceptionCauseFqcn", quote(text(headers, KafkaHeaders.DLT_EXCEPTION_CAUSE_FQCN)));
    field(json, "exceptionMessage", quote(text(headers, KafkaHeaders.DLT_EXCEPTION_MESSAGE)));
    String stack = text(headers, KafkaHeaders.DLT_EXCEPTION_STACKTRACE);
    field(json, "exceptionStacktraceFirstLine", quote(stack == null ? null : stack.split("\n", 2)[0]));
    // The "Caused by: " lines of the trace, as Throwable.printStackTrace writes one per cause.
    List<String> causes = new ArrayList<>();
    if (stack != null) {
      for (String line : stack.split("\n")) {
        if (line.startsWith("Caused by: ")) causes.add(quote(line.substring("Caused by: ".length())));
      }
    }
    field(json, "exceptionStacktraceCauses", "[" + String.join(",", causes) + "]");
    // Every value of the original topic header in order (Spring appends one per dead-lettering by default).
    List<String> originalTopics = new ArrayList<>();
    for (Header header : record.headers().headers(KafkaHeaders.DLT_ORIGINAL_TOPIC)) {
      originalTopics.add(quote(new String(header.value(), StandardCharsets.UTF_8)));
    }
    field(json, "originalTopics", "[" + String.join(",", originalTopics) + "]");
    TreeSet<String> names = new TreeSet<>();
    for (Header header : record.headers()) {
      if (header.key().startsWith("kafka_dlt-")) names.add(quote(header.key()));
    }
    field(json, "dltHeaderNames", "[" + String.join(",", names) + "]");
    json.setLength(json.length() - 1);
    return json.append('}').toString();
  }

  /** The mapped header as the byte[] Spring's mapper gives for a header it has no type for, or null. */
  private static byte[] bytes(MessageHeaders headers, String name) {
    Object value = headers.get(name);
    if (value == null) return null;
    if (value instanceof byte[] raw) return raw;
    throw new IllegalStateException(name + " mapped to " + value.getClass().getName() + ", not byte[]");
  }

  private static String text(MessageHeaders headers, String name) {
    byte[] raw = bytes(headers, name);
    return raw == null ? null : new String(raw, StandardCharsets.UTF_8);
  }

  /** ByteBuffer.getInt, as Spring's readers of DLT_ORIGINAL_PARTITION do; a wrong length is reported, not guessed. */
  private static String int32(MessageHeaders headers, String name) {
    byte[] raw = bytes(headers, name);
    if (raw == null) return "null";
    return raw.length == Integer.BYTES ? String.valueOf(ByteBuffer.wrap(raw).getInt()) : quote("length " + raw.length);
  }

  private static String int64(MessageHeaders headers, String name) {
    byte[] raw = bytes(headers, name);
    if (raw == null) return "null";
    return raw.length == Long.BYTES ? quote(String.valueOf(ByteBuffer.wrap(raw).getLong())) : quote("length " + raw.length);
  }

  private static void field(StringBuilder json, String name, String value) {
    json.append(quote(name)).append(':').append(value).append(',');
  }

  private static String quote(String text) {
    if (text == null) return "null";
    StringBuilder out = new StringBuilder("\"");
    for (char c : text.toCharArray()) {
      if (c == '"' || c == '\\') out.append('\\').append(c);
      else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
      else out.append(c);
    }
    return out.append('"').toString();
  }
}
