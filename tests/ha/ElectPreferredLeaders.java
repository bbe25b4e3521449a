// Preferred-replica election on every partition of a cluster, through Kafka's Admin API (the
// downloaded Kafka's lib has kafka-clients but not the kafka-leader-election tool). Run by the
// kill suite as a single-file program: java -cp '<kafka>/lib/*' ElectPreferredLeaders.java <bootstrap>
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ElectionNotNeededException;

public class ElectPreferredLeaders {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    try (Admin admin = Admin.create(p)) {
      // null: every partition of the cluster
      Map<TopicPartition, Optional<Throwable>> r = admin.electLeaders(ElectionType.PREFERRED, null).partitions().get();
      int moved = 0, already = 0, failed = 0;
      for (Map.Entry<TopicPartition, Optional<Throwable>> e : r.entrySet()) {
        if (e.getValue().isEmpty()) moved++;
        else if (e.getValue().get() instanceof ElectionNotNeededException) already++;
        else { failed++; System.err.println(e.getKey() + ": " + e.getValue().get()); }
      }
      System.out.println(moved + " partitions moved to their preferred leader, " + already + " already there, " + failed + " failed");
      if (failed > 0) System.exit(1);
    }
  }
}
