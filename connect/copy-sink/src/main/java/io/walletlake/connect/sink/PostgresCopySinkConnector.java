package io.walletlake.connect.sink;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.sink.SinkConnector;

/** Upserts a topic's records into a Postgres table, a batch at a time by COPY (PostgresCopySinkTask). */
public final class PostgresCopySinkConnector extends SinkConnector {
    static final String VERSION = "1";
    private Map<String, String> props;

    @Override
    public void start(Map<String, String> props) {
        new CopySinkConfig(props); // refuse a bad config at once, not in every task
        this.props = Map.copyOf(props);
    }

    @Override
    public Class<? extends Task> taskClass() {
        return PostgresCopySinkTask.class;
    }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        List<Map<String, String>> configs = new ArrayList<>(maxTasks);
        for (int i = 0; i < maxTasks; i++) {
            configs.add(props);
        }
        return configs;
    }

    @Override
    public void stop() {
    }

    @Override
    public ConfigDef config() {
        return CopySinkConfig.DEF;
    }

    @Override
    public String version() {
        return VERSION;
    }
}
