package io.walletlake.connect.sink;

import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.types.Password;

/** The connector's settings (connect/postgres-sink.copy.json renders them for this deployment). */
final class CopySinkConfig extends AbstractConfig {
    static final String CONNECTION_URL = "connection.url";
    static final String CONNECTION_USERNAME = "connection.username";
    static final String CONNECTION_PASSWORD = "connection.password";
    static final String TABLE_NAME = "table.name";
    static final String PRIMARY_KEY_FIELDS = "primary.key.fields";
    static final String MAX_RETRIES = "max.retries";
    static final String RETRY_BACKOFF_MS = "retry.backoff.ms";

    static final ConfigDef DEF = new ConfigDef()
        .define(CONNECTION_URL, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(), Importance.HIGH,
            "pgjdbc URL of the target database, TLS parameters included (jdbc:postgresql://host:port/db?sslmode=...).")
        .define(CONNECTION_USERNAME, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(), Importance.HIGH,
            "Role the sink logs in as: it needs INSERT, UPDATE and SELECT on the table, and TEMPORARY on the database.")
        .define(CONNECTION_PASSWORD, Type.PASSWORD, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH,
            "That role's password; give a config provider reference (${env:...}, ${secretsManager:...}), never a value.")
        .define(TABLE_NAME, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(), Importance.HIGH,
            "Target table, optionally schema-qualified. Its columns are the record value's fields.")
        .define(PRIMARY_KEY_FIELDS, Type.LIST, ConfigDef.NO_DEFAULT_VALUE, CopySinkConfig::requireFields, Importance.HIGH,
            "Value fields forming the table's primary key: the ON CONFLICT target. Several records of one key "
                + "in a batch reach the table one statement after another, in the topic's order.")
        .define(MAX_RETRIES, Type.INT, 10, ConfigDef.Range.atLeast(0), Importance.MEDIUM,
            "Further tries of a batch after an error another try may cure (a lost connection, a server "
                + "restarting, a deadlock), on a new connection, before the task fails.")
        .define(RETRY_BACKOFF_MS, Type.LONG, 3000L, ConfigDef.Range.atLeast(0), Importance.MEDIUM,
            "Wait before each further try.");

    private static void requireFields(String name, Object value) {
        if (!(value instanceof List<?> list) || list.isEmpty() || list.stream().anyMatch(f -> f.toString().isBlank())) {
            throw new ConfigException(name, value, "name at least one field, none of them empty");
        }
    }

    CopySinkConfig(Map<String, String> props) {
        super(DEF, props);
    }

    String url() { return getString(CONNECTION_URL); }
    String username() { return getString(CONNECTION_USERNAME); }
    Password password() { return getPassword(CONNECTION_PASSWORD); }
    String table() { return getString(TABLE_NAME); }
    List<String> primaryKey() { return getList(PRIMARY_KEY_FIELDS); }
    int maxRetries() { return getInt(MAX_RETRIES); }
    long retryBackoffMs() { return getLong(RETRY_BACKOFF_MS); }
}
