/*
 * Java producers for test/outside-in-9.e2e-spec.ts, one JVM for the whole spec, driven by lines on stdin:
 *
 *   java -cp '.kafka/lib/*' test/support/java/LogWriter.java <brokers>
 *
 * Each command answers one stdout line, "OK <command>" once everything it wrote is acknowledged, or
 * "ERR <command> <exception>" (the process goes on). Values are {"seq":n} keyed "k<n>".
 *
 * interleave <topic> (3 partitions): transactional producers A and B write in turn, each record flushed before the
 *   other's: A seq 0-8 (partition seq % 3) beside B seq 100-108, then A commits and B aborts; A seq 9-14 committed;
 *   B seq 200 (p0), 201 (p1), 202 (p2) aborted. Every partition: 13 offsets, ending with an abort marker.
 * open <topic> <partition> <seq>...: a transactional producer (transactional.id "<topic>-open") begins a
 *   transaction and writes the seqs to the partition, and leaves the transaction open.
 * replace <topic>: a new producer with that transactional.id initialises, which aborts the open transaction (what a
 *   restarted service does); the old producer, fenced, is closed.
 * quit: closes everything and exits 0.
 */

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class LogWriter {
  private static String brokers;
  private static final Map<String, KafkaProducer<String, String>> open = new HashMap<>();

  public static void main(String[] args) throws Exception {
    brokers = args[0];
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    System.out.println("READY");
    for (String line = in.readLine(); line != null; line = in.readLine()) {
      String[] words = line.trim().split("\\s+");
      if (words[0].equals("quit")) break;
      try {
        switch (words[0]) {
          case "interleave" -> interleave(words[1]);
          case "open" -> openTransaction(words);
          case "replace" -> replace(words[1]);
          default -> throw new IllegalArgumentException("unknown command " + words[0]);
        }
        System.out.println("OK " + line);
      } catch (Exception e) {
        System.out.println("ERR " + line + " " + e);
      }
    }
    for (KafkaProducer<String, String> producer : open.values()) producer.close(Duration.ZERO);
  }

  private static KafkaProducer<String, String> transactional(String transactionalId) {
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
    KafkaProducer<String, String> producer = new KafkaProducer<>(props);
    producer.initTransactions();
    return producer;
  }

  private static ProducerRecord<String, String> record(String topic, int partition, int seq) {
    return new ProducerRecord<>(topic, partition, "k" + seq, "{\"seq\":" + seq + "}");
  }

  private static void interleave(String topic) {
    try (KafkaProducer<String, String> a = transactional(topic + "-a");
        KafkaProducer<String, String> b = transactional(topic + "-b")) {
      a.beginTransaction();
      b.beginTransaction();
      for (int seq = 0; seq < 9; seq++) {
        a.send(record(topic, seq % 3, seq));
        a.flush();
        b.send(record(topic, seq % 3, 100 + seq));
        b.flush();
      }
      a.commitTransaction();
      b.abortTransaction();
      a.beginTransaction();
      for (int seq = 9; seq < 15; seq++) a.send(record(topic, seq % 3, seq));
      a.commitTransaction();
      b.beginTransaction();
      for (int partition = 0; partition < 3; partition++) b.send(record(topic, partition, 200 + partition));
      b.flush();
      b.abortTransaction();
    }
  }

  private static void openTransaction(String[] words) {
    String topic = words[1];
    int partition = Integer.parseInt(words[2]);
    KafkaProducer<String, String> producer = transactional(topic + "-open");
    open.put(topic, producer);
    producer.beginTransaction();
    for (int i = 3; i < words.length; i++) producer.send(record(topic, partition, Integer.parseInt(words[i])));
    producer.flush();
  }

  private static void replace(String topic) {
    transactional(topic + "-open").close();
    KafkaProducer<String, String> fenced = open.remove(topic);
    if (fenced != null) fenced.close(Duration.ZERO);
  }
}
