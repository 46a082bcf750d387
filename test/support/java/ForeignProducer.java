/*
 * Records that only a foreign producer writes, for test/foreign-producers.e2e-spec.ts:
 *
 *   java -cp '.kafka/lib/*' test/support/java/ForeignProducer.java <brokers> <topic> <scenario>
 *
 * transactions: one transactional producer on partition 0: seq 0-4 committed, 5-9 aborted, 10-14 committed, each
 *   transaction ending in its control record (so the log ends with a commit marker).
 * aborted-last: seq 0-2 committed, then 3-5 aborted (the log ends with an abort marker).
 * null-header: on partition 0, a value that is not JSON with a header whose value is null (Java's
 *   `new RecordHeader(name, null)`), then {"seq":1}.
 * Values are {"seq":n} keyed "k<n>". stdout: "DONE" once everything is acknowledged; errors on stderr, exit 1.
 */

import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.StringSerializer;

public class ForeignProducer {
  public static void main(String[] args) throws Exception {
    String brokers = args[0];
    String topic = args[1];
    String scenario = args[2];
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    switch (scenario) {
      case "transactions" -> {
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, topic + "-tx");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
          producer.initTransactions();
          transaction(producer, topic, 0, 5, true);
          transaction(producer, topic, 5, 10, false);
          transaction(producer, topic, 10, 15, true);
        }
      }
      case "aborted-last" -> {
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, topic + "-tx");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
          producer.initTransactions();
          transaction(producer, topic, 0, 3, true);
          transaction(producer, topic, 3, 6, false);
        }
      }
      case "null-header" -> {
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
          ProducerRecord<String, String> bad = new ProducerRecord<>(topic, 0, "k0", "not json");
          bad.headers().add(new RecordHeader("trace", (byte[]) null));
          bad.headers().add(new RecordHeader("origin", "java".getBytes(StandardCharsets.UTF_8)));
          producer.send(bad).get();
          producer.send(new ProducerRecord<>(topic, 0, "k1", "{\"seq\":1}")).get();
        }
      }
      default -> throw new IllegalArgumentException("unknown scenario " + scenario);
    }
    System.out.println("DONE");
  }

  private static void transaction(
      KafkaProducer<String, String> producer, String topic, int from, int to, boolean commit) throws Exception {
    producer.beginTransaction();
    for (int seq = from; seq < to; seq++)
      producer.send(new ProducerRecord<>(topic, 0, "k" + seq, "{\"seq\":" + seq + "}"));
    producer.flush();
    if (commit) producer.commitTransaction();
    else producer.abortTransaction();
  }
}
