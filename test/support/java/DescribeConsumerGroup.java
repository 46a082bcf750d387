/*
 * Kafka's own view of a consumer group, for the specs that compare the library's status with it: Java's
 * AdminClient.describeConsumerGroups (ConsumerGroupDescribe for a group of the consumer protocol, DescribeGroups for a
 * classic one), printed one line per fact on stdout (Kafka's logging goes to stderr at WARN).
 *
 *   java -cp '.kafka/lib/*' test/support/java/DescribeConsumerGroup.java <brokers> <groupId>
 *
 *   GROUP <state> <type> <assignor|->               type: Consumer or Classic (Java's GroupType)
 *   MEMBER <memberId> <clientId> <host> <upgraded|-> <topic:p,p;topic:p|->
 *                                                   upgraded: false for a classic member of a consumer group,
 *                                                   true for a consumer-protocol member, - when the broker does not say
 */

import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.common.TopicPartition;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;

public class DescribeConsumerGroup {
  public static void main(String[] args) throws Exception {
    ConfigurationBuilder<BuiltConfiguration> logging = ConfigurationBuilderFactory.newConfigurationBuilder();
    logging.setStatusLevel(Level.ERROR);
    logging.add(logging.newAppender("stderr", "Console").addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
        .add(logging.newLayout("PatternLayout").addAttribute("pattern", "%-5level %c{1} - %msg%n")));
    logging.add(logging.newRootLogger(Level.WARN).add(logging.newAppenderRef("stderr")));
    Configurator.initialize(logging.build());

    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
    try (Admin admin = Admin.create(props)) {
      ConsumerGroupDescription group = admin.describeConsumerGroups(List.of(args[1])).all().get().get(args[1]);
      System.out.println("GROUP " + group.groupState() + " " + group.type() + " "
          + (group.partitionAssignor().isEmpty() ? "-" : group.partitionAssignor()));
      for (MemberDescription member : group.members()) {
        Map<String, TreeSet<Integer>> byTopic = new TreeMap<>();
        for (TopicPartition tp : member.assignment().topicPartitions()) {
          byTopic.computeIfAbsent(tp.topic(), t -> new TreeSet<>()).add(tp.partition());
        }
        String assignment = byTopic.isEmpty() ? "-" : byTopic.entrySet().stream()
            .map(e -> e.getKey() + ":" + e.getValue().stream().map(String::valueOf).collect(Collectors.joining(",")))
            .collect(Collectors.joining(";"));
        System.out.println("MEMBER " + member.consumerId() + " " + member.clientId() + " " + member.host() + " "
            + member.upgraded().map(String::valueOf).orElse("-") + " " + assignment);
      }
    }
  }
}
