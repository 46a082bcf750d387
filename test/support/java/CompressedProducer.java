/*
 * A plain Java Kafka producer for the compression e2e spec (test/compression.e2e-spec.ts): for each codec given,
 * one producer with that compression.type writes `count` JSON records to the topic, batched (linger.ms), keyed.
 *
 *   java -cp '.kafka/lib/*' test/support/java/CompressedProducer.java <brokers> <topic> <count> <codec,codec,...>
 *
 * Record i of the k-th codec: key "k<seq>", value {"seq":<seq>,"codec":"<codec>"} with seq = k * count + i.
 * stdout: "SENT <codec> <count>" per codec once flushed and acknowledged, then "DONE"; errors on stderr, exit 1.
 */

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public class CompressedProducer {
  public static void main(String[] args) throws Exception {
    String brokers = args[0];
    String topic = args[1];
    int count = Integer.parseInt(args[2]);
    String[] codecs = args[3].split(",");
    for (int k = 0; k < codecs.length; k++) {
      Properties props = new Properties();
      props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
      props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codecs[k]);
      props.put(ProducerConfig.LINGER_MS_CONFIG, "50");
      props.put(ProducerConfig.ACKS_CONFIG, "all");
      props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
      props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
      try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = 0; i < count; i++) {
          int seq = k * count + i;
          String value = "{\"seq\":" + seq + ",\"codec\":\"" + codecs[k] + "\",\"pad\":\"" + "x".repeat(200) + "\"}";
          sent.add(producer.send(new ProducerRecord<>(topic, "k" + seq, value)));
        }
        producer.flush();
        for (Future<RecordMetadata> result : sent) result.get();
      }
      System.out.println("SENT " + codecs[k] + " " + count);
    }
    System.out.println("DONE");
  }
}
