import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.annotation.BackOff;
import org.springframework.kafka.annotation.DltHandler;
import org.springframework.kafka.annotation.EnableKafka;
import org.springframework.kafka.annotation.EnableKafkaRetryTopic;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.annotation.RetryableTopic;
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.kafka.support.KafkaMessageHeaderAccessor;
import org.springframework.messaging.Message;
import org.springframework.scheduling.concurrent.ThreadPoolTaskScheduler;

/**
 * Spring Kafka's non-blocking retries (@RetryableTopic: attempts 3, delays 1000 and 2000 ms, its default names
 * <topic>-retry-1000, <topic>-retry-2000, <topic>-dlt, created beforehand) on a topic, in a plain Spring context
 * (no Spring Boot), for test/outside-in-3.e2e-spec.ts:
 *
 *   <brokers> <topic> <group> fail <count>     the listener throws: Spring's chain moves each record along its
 *                                               retry topics to the dead-letter topic; exits after <count> dead letters
 *   <brokers> <topic> <group> succeed <count>  the listener returns: exits after <count> deliveries
 *
 * Prints "DELIVERY <topic> <partition> <offset> <attempt>" per listener call (the attempt as Spring reads it,
 * KafkaMessageHeaderAccessor.getNonBlockingRetryDeliveryAttempt), "DLT <topic> <partition> <offset>" per dead
 * letter, then DONE; exits 2 on a timeout.
 */
public class SpringRetryChain {
  static String brokers;
  static String topic;
  static String group;
  static boolean fail;
  static CountDownLatch done;

  public static void main(String[] args) throws Exception {
    brokers = args[0];
    topic = args[1];
    group = args[2];
    fail = args[3].equals("fail");
    done = new CountDownLatch(Integer.parseInt(args[4]));
    System.setProperty("probe.topic", topic);
    System.setProperty("probe.group", group);
    boolean finished;
    try (AnnotationConfigApplicationContext context = new AnnotationConfigApplicationContext(Config.class)) {
      System.out.println("STARTED");
      finished = done.await(90, TimeUnit.SECONDS);
    }
    System.out.println(finished ? "DONE" : "TIMEOUT");
    System.out.flush();
    System.exit(finished ? 0 : 2);
  }

  @Configuration
  @EnableKafka
  @EnableKafkaRetryTopic
  public static class Config {
    @Bean
    public KafkaTemplate<String, String> kafkaTemplate() {
      return new KafkaTemplate<>(new DefaultKafkaProducerFactory<>(Map.of(
          ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers,
          ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class,
          ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class)));
    }

    @Bean
    public ConcurrentKafkaListenerContainerFactory<String, String> kafkaListenerContainerFactory() {
      ConcurrentKafkaListenerContainerFactory<String, String> factory = new ConcurrentKafkaListenerContainerFactory<>();
      factory.setConsumerFactory(new DefaultKafkaConsumerFactory<>(Map.of(
          ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers,
          ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
          ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class,
          ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class)));
      return factory;
    }

    @Bean
    public ThreadPoolTaskScheduler taskScheduler() {
      return new ThreadPoolTaskScheduler();
    }

    @Bean
    public Listener listener() {
      return new Listener();
    }
  }

  public static class Listener {
    @RetryableTopic(attempts = "3", backOff = @BackOff(delay = 1000, multiplier = 2.0), autoCreateTopics = "false")
    @KafkaListener(topics = "${probe.topic}", groupId = "${probe.group}")
    public void listen(Message<String> message) {
      KafkaMessageHeaderAccessor accessor = KafkaMessageHeaderAccessor.wrap(message);
      System.out.println("DELIVERY " + accessor.getHeader(KafkaHeaders.RECEIVED_TOPIC) + " "
          + accessor.getHeader(KafkaHeaders.RECEIVED_PARTITION) + " " + accessor.getHeader(KafkaHeaders.OFFSET) + " "
          + accessor.getNonBlockingRetryDeliveryAttempt());
      if (fail) throw new IllegalStateException("spring retry probe refused " + message.getPayload());
      done.countDown();
    }

    @DltHandler
    public void dlt(ConsumerRecord<String, String> record) {
      System.out.println("DLT " + record.topic() + " " + record.partition() + " " + record.offset());
      if (fail) done.countDown();
    }
  }
}
