/*
 * Records from Java producers for test/outside-in.e2e-spec.ts:
 *
 *   java -cp '.kafka/lib/*' test/support/java/OutsideProducer.java <brokers> <topic> <scenario>
 *
 * open-transaction (topic of 2 partitions; values {"seq":n} keyed "k<n>"):
 *   producer A: seq 0 (p0), 1 (p1), 2 (p0), 3 (p1) committed; 4 (p0), 5 (p1) aborted; then 6 (p0), 7 (p1) in a
 *   transaction left open. stdout "OPEN".
 *   producer B, while A's transaction is open: 8 (p0) aborted, then 9 (p0), 10 (p1) committed. stdout "B DONE".
 *   Then it waits for a line "commit" on stdin, commits A's transaction: stdout "DONE".
 * headers (one partition): seq 0 with header "dup" twice ("one", then bytes ff fe 00) and "bin" = c3 28; seq 1 with
 *   a null key. stdout "DONE".
 * Errors on stderr, exit 1.
 */

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.StringSerializer;

public class OutsideProducer {
  public static void main(String[] args) throws Exception {
    String brokers = args[0];
    String topic = args[1];
    String scenario = args[2];
    switch (scenario) {
      case "open-transaction" -> openTransaction(brokers, topic);
      case "headers" -> headers(brokers, topic);
      default -> throw new IllegalArgumentException("unknown scenario " + scenario);
    }
    System.out.println("DONE");
  }

  private static Properties props(String brokers, String transactionalId) {
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    if (transactionalId != null) props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
    return props;
  }

  private static ProducerRecord<String, String> record(String topic, int partition, int seq) {
    return new ProducerRecord<>(topic, partition, "k" + seq, "{\"seq\":" + seq + "}");
  }

  private static void openTransaction(String brokers, String topic) throws Exception {
    try (KafkaProducer<String, String> a = new KafkaProducer<>(props(brokers, topic + "-a"));
        KafkaProducer<String, String> b = new KafkaProducer<>(props(brokers, topic + "-b"))) {
      a.initTransactions();
      b.initTransactions();
      a.beginTransaction();
      for (int seq = 0; seq < 4; seq++) a.send(record(topic, seq % 2, seq));
      a.commitTransaction();
      a.beginTransaction();
      a.send(record(topic, 0, 4));
      a.send(record(topic, 1, 5));
      a.flush();
      a.abortTransaction();
      a.beginTransaction();
      a.send(record(topic, 0, 6));
      a.send(record(topic, 1, 7));
      a.flush();
      System.out.println("OPEN");
      b.beginTransaction();
      b.send(record(topic, 0, 8));
      b.flush();
      b.abortTransaction();
      b.beginTransaction();
      b.send(record(topic, 0, 9));
      b.send(record(topic, 1, 10));
      b.commitTransaction();
      System.out.println("B DONE");
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      String line = in.readLine();
      if (!"commit".equals(line)) throw new IllegalStateException("expected \"commit\" on stdin, read " + line);
      a.commitTransaction();
    }
  }

  private static void headers(String brokers, String topic) throws Exception {
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(props(brokers, null))) {
      ProducerRecord<String, String> first = record(topic, 0, 0);
      first.headers().add(new RecordHeader("dup", "one".getBytes(StandardCharsets.UTF_8)));
      first.headers().add(new RecordHeader("dup", new byte[] {(byte) 0xff, (byte) 0xfe, 0x00}));
      first.headers().add(new RecordHeader("bin", new byte[] {(byte) 0xc3, 0x28}));
      producer.send(first).get();
      producer.send(new ProducerRecord<>(topic, 0, null, "{\"seq\":1}")).get();
    }
  }
}
