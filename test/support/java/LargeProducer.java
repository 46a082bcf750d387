/*
 * Large records from a plain Java producer for test/outside-in-6.e2e-spec.ts (max.request.size raised, as a team
 * sending records above the broker's default size sets it):
 *
 *   java -cp '.kafka/lib/*' test/support/java/LargeProducer.java <brokers> <topic> <codecs> <pad> <valueBytes> <seqs>
 *
 * One record per seq (comma-separated), keyed "k<seq>", value {"seq":<seq>,"pad":"..."} padded to valueBytes bytes:
 * pad "repeat" is one letter over and over (compresses to almost nothing), "random" letters from a fixed seed (about
 * 6 bits a byte). The j-th seq goes with the (j mod n)-th of the n codecs (comma-separated compression.type values),
 * one producer per codec after the other. batch.size is left at its default (16 KiB): a larger record is a batch of
 * its own (with a batch.size above the topic's max.message.bytes, Java's producer splits a refused batch into batches
 * as large again and sends them forever).
 * stdout "DONE" once every record was acknowledged; errors on stderr, exit 1.
 */

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.Future;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public class LargeProducer {
  private static final String LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

  public static void main(String[] args) throws Exception {
    String brokers = args[0];
    String topic = args[1];
    String[] codecs = args[2].split(",");
    boolean random = args[3].equals("random");
    int valueBytes = Integer.parseInt(args[4]);
    String[] seqs = args[5].split(",");
    Random letters = new Random(42);
    for (int k = 0; k < codecs.length; k++) {
      Properties props = new Properties();
      props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
      props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codecs[k]);
      props.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(16 * 1024 * 1024));
      props.put(ProducerConfig.LINGER_MS_CONFIG, "100");
      props.put(ProducerConfig.ACKS_CONFIG, "all");
      props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
      props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
      try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int j = k; j < seqs.length; j += codecs.length) {
          String head = "{\"seq\":" + seqs[j] + ",\"pad\":\"";
          StringBuilder value = new StringBuilder(head);
          for (int i = head.length() + 2; i < valueBytes; i++) {
            value.append(random ? LETTERS.charAt(letters.nextInt(LETTERS.length())) : 'x');
          }
          value.append("\"}");
          sent.add(producer.send(new ProducerRecord<>(topic, "k" + seqs[j], value.toString())));
        }
        producer.flush();
        for (Future<RecordMetadata> result : sent) result.get();
      }
    }
    System.out.println("DONE");
  }
}
