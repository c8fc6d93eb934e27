package io.walletlake.connect.sink;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.StringJoiner;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.sink.ErrantRecordReporter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyIn;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes each batch the worker hands over in one transaction: COPY into a session temp table shaped
 * like the target, then INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE (one statement; one more
 * for each further record of a key within the batch), then COMMIT. put()
 * returns only after the commit, so the offsets the worker commits next are always in Postgres
 * (at least once; the upsert makes a replay harmless).
 *
 * <p>The target's triggers see ordinary INSERT and UPDATE statements: the row trigger that keeps
 * the newest state and the statement triggers that mark dirty dts work as with any JDBC sink.
 *
 * <p>Failures: a lost connection or another transient error (isTransient) retries the batch
 * (max.retries, every retry.backoff.ms) on a new connection, then fails the task; any other error
 * fails it at once. A batch that Postgres refuses for its
 * data (SQLSTATE classes 22 and 23, e.g. a CHECK constraint) is split until the refused records are
 * alone; each goes to the dead-letter topic with the reason, and every other record loads. Without
 * a dead-letter topic (errors.tolerance=none) such a record fails the task.
 */
public final class PostgresCopySinkTask extends SinkTask {
    private static final Logger log = LoggerFactory.getLogger(PostgresCopySinkTask.class);
    private static final String STAGING = "pg_temp.copy_sink_staging";
    private static final String ROUND = "copy_sink_round";
    private static final String ROUND_PLACEHOLDER = "$round";

    private CopySinkConfig config;
    private ErrantRecordReporter reporter;
    private Connection connection;
    private final Map<Schema, CopyText> formats = new HashMap<>();

    @Override
    public String version() {
        return PostgresCopySinkConnector.VERSION;
    }

    @Override
    public void start(Map<String, String> props) {
        config = new CopySinkConfig(props);
        try {
            reporter = context.errantRecordReporter();
        } catch (NoSuchMethodError | NoClassDefFoundError e) {
            reporter = null; // a worker older than Kafka 2.6
        }
    }

    @Override
    public void put(Collection<SinkRecord> records) {
        if (records.isEmpty()) return;
        List<SinkRecord> batch = new ArrayList<>(records.size());
        List<Struct> values = new ArrayList<>(records.size());
        for (SinkRecord record : records) {
            try {
                Struct value = asStruct(record);
                keyOf(value);
                batch.add(record);
                values.add(value);
            } catch (DataException e) {
                refuse(record, e);
            }
        }
        // Runs of one schema (a topic with schema.content has one) share a statement.
        int start = 0;
        for (int i = 1; i <= values.size(); i++) {
            if (i == values.size() || !Objects.equals(values.get(i).schema(), values.get(start).schema())) {
                writeWithRetries(batch.subList(start, i), values.subList(start, i));
                start = i;
            }
        }
    }

    private static Struct asStruct(SinkRecord record) {
        if (!(record.value() instanceof Struct)) {
            throw new DataException(record.value() == null ? "a record without a value (a tombstone): this sink never deletes rows"
                : "the record value is a " + record.value().getClass().getSimpleName() + ", not a struct with a schema");
        }
        return (Struct) record.value();
    }

    private Object keyOf(Struct value) {
        List<String> fields = config.primaryKey();
        if (fields.size() == 1) return keyPart(value, fields.get(0));
        List<Object> key = new ArrayList<>(fields.size());
        for (String f : fields) key.add(keyPart(value, f));
        return key;
    }

    private static Object keyPart(Struct value, String field) {
        Object part = value.get(field); // DataException when the schema lacks the field
        if (part == null) throw new DataException("the record has no value for the key field " + field);
        return part;
    }

    /**
     * A run of records of one schema, each encoded once as a COPY row: row i is text[ends[i-1], ends[i]).
     * A row's round is 1 for the first record of its key in the run, 2 for the second, and so on.
     */
    private static final class Encoded {
        final List<SinkRecord> records = new ArrayList<>();
        final List<Integer> ends = new ArrayList<>();
        final List<Integer> rounds = new ArrayList<>();
        final StringBuilder text = new StringBuilder(1 << 20);
        final java.util.Set<Integer> refused = new java.util.HashSet<>();

        int start(int row) {
            return row == 0 ? 0 : ends.get(row - 1);
        }
    }

    private void writeWithRetries(List<SinkRecord> records, List<Struct> values) {
        CopyText format = formats.computeIfAbsent(values.get(0).schema(), CopyText::new);
        Encoded run = new Encoded();
        Map<Object, Integer> seen = new HashMap<>();
        for (int i = 0; i < records.size(); i++) {
            try {
                format.append(values.get(i), run.text);
            } catch (DataException e) {
                refuse(records.get(i), e);
                continue;
            }
            int round = seen.merge(keyOf(values.get(i)), 1, Integer::sum);
            run.text.setLength(run.text.length() - 1); // the round goes after the value's columns
            run.text.append('\t').append(round).append('\n');
            run.records.add(records.get(i));
            run.ends.add(run.text.length());
            run.rounds.add(round);
        }
        if (run.records.isEmpty()) return;
        for (int attempt = 0; ; attempt++) {
            try {
                writeOrSplit(run, 0, run.records.size(), format);
                return;
            } catch (SQLException e) {
                closeConnection();
                if (!isTransient(e)) {
                    throw new ConnectException("the batch of " + run.records.size() + " records cannot load: " + describe(e), e);
                }
                if (attempt >= config.maxRetries()) {
                    throw new ConnectException("the batch of " + run.records.size() + " records did not load after "
                        + (attempt + 1) + " attempts: " + describe(e), e);
                }
                log.warn("the batch of {} records did not load ({}); retry {} of {} in {} ms", run.records.size(), describe(e),
                    attempt + 1, config.maxRetries(), config.retryBackoffMs());
                sleep(config.retryBackoffMs());
            }
        }
    }

    /** Loads rows [from, to); on a data error, its halves, down to the single rows Postgres refuses. */
    private void writeOrSplit(Encoded run, int from, int to, CopyText format) throws SQLException {
        if (to - from == 1 && run.refused.contains(from)) return; // reported on an earlier attempt
        try {
            int rounds = 1;
            for (int i = from; i < to; i++) rounds = Math.max(rounds, run.rounds.get(i));
            write(format, run.text.substring(run.start(from), run.ends.get(to - 1)), rounds);
        } catch (SQLException e) {
            if (!isDataError(e)) throw e;
            if (to - from == 1) {
                run.refused.add(from);
                refuse(run.records.get(from), new DataException("Postgres refused the row: " + describe(e), e));
                return;
            }
            int half = from + (to - from) / 2;
            writeOrSplit(run, from, half, format);
            writeOrSplit(run, half, to, format);
        }
    }

    /**
     * One transaction: the rows into the staging table, then one upsert per round, in order. A key's
     * records thus reach the table one statement after another, in the topic's order, and the
     * table's triggers judge each (the newest-state rule sees every record, not just the last).
     */
    private void write(CopyText format, String text, int rounds) throws SQLException {
        Connection conn = connection();
        boolean done = false;
        try {
            String columns = columnList(format.columns());
            byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
            CopyIn copy = conn.unwrap(PGConnection.class).getCopyAPI()
                .copyIn("COPY " + STAGING + " (" + columns + ", " + ROUND + ") FROM STDIN");
            try {
                copy.writeToCopy(bytes, 0, bytes.length);
                copy.endCopy();
            } finally {
                cancelIfActive(copy);
            }
            try (Statement st = conn.createStatement()) {
                String upsert = upsert(format.columns());
                for (int round = 1; round <= rounds; round++) {
                    st.executeUpdate(upsert.replace(ROUND_PLACEHOLDER, Integer.toString(round)));
                }
            }
            conn.commit(); // ON COMMIT DELETE ROWS empties the staging table
            done = true;
        } finally {
            if (!done) rollbackQuietly(conn);
        }
    }

    private String upsert(List<String> columns) {
        String cols = columnList(columns);
        StringJoiner key = new StringJoiner(", ");
        for (String k : config.primaryKey()) key.add(CopyText.quoteIdentifier(k));
        StringJoiner set = new StringJoiner(", ");
        for (String c : columns) {
            if (!config.primaryKey().contains(c)) {
                String q = CopyText.quoteIdentifier(c);
                set.add(q + " = EXCLUDED." + q);
            }
        }
        return "INSERT INTO " + CopyText.quoteTable(config.table()) + " (" + cols + ") SELECT " + cols + " FROM " + STAGING
            + " WHERE " + ROUND + " = " + ROUND_PLACEHOLDER + " ON CONFLICT (" + key + ") " + (set.length() == 0 ? "DO NOTHING" : "DO UPDATE SET " + set);
    }

    private static String columnList(List<String> columns) {
        StringJoiner j = new StringJoiner(", ");
        for (String c : columns) j.add(CopyText.quoteIdentifier(c));
        return j.toString();
    }

    private Connection connection() throws SQLException {
        if (connection == null) {
            Properties props = new Properties();
            props.setProperty("user", config.username());
            props.setProperty("password", config.password().value());
            props.setProperty("ApplicationName", "wallet-lake copy sink");
            Connection conn = DriverManager.getConnection(config.url(), props);
            try {
                conn.setAutoCommit(false);
                try (Statement st = conn.createStatement()) {
                    // Shaped like the target (NOT NULL included); never logged, emptied by every commit.
                    st.execute("CREATE TEMP TABLE IF NOT EXISTS copy_sink_staging (LIKE " + CopyText.quoteTable(config.table())
                        + " INCLUDING DEFAULTS, " + ROUND + " integer NOT NULL) ON COMMIT DELETE ROWS");
                }
                conn.commit();
            } catch (SQLException e) {
                conn.close();
                throw e;
            }
            connection = conn;
        }
        return connection;
    }

    /**
     * Errors another try may cure: no SQLSTATE (an I/O error), connection (08), transaction
     * rollback (40: serialization, deadlock), resources (53), operator intervention (57: a server
     * shutting down or restarting), system (58). Privileges (42), authentication (28) and the like
     * fail the task at once with their reason.
     */
    private static boolean isTransient(SQLException e) {
        String state = e.getSQLState();
        return state == null || state.length() < 2
            || switch (state.substring(0, 2)) { case "08", "40", "53", "57", "58" -> true; default -> false; };
    }

    /** SQLSTATE 22 (data exception) and 23 (integrity constraint violation): the rows, not the server. */
    private static boolean isDataError(SQLException e) {
        String state = e.getSQLState();
        return state != null && (state.startsWith("22") || state.startsWith("23"));
    }

    private static String describe(SQLException e) {
        return "SQLSTATE " + e.getSQLState() + ": " + e.getMessage();
    }

    private void refuse(SinkRecord record, DataException reason) {
        if (reporter == null) throw reason;
        try {
            reporter.report(record, reason).get(); // in the dead-letter topic before the offset can commit
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ConnectException("interrupted while reporting a refused record", e);
        } catch (ExecutionException e) {
            throw new ConnectException("could not report a refused record to the dead-letter topic", e.getCause());
        }
        log.warn("refused the record at {}-{} offset {}: {}", record.topic(), record.kafkaPartition(), record.kafkaOffset(), reason.getMessage());
    }

    private static void cancelIfActive(CopyIn copy) {
        try {
            if (copy.isActive()) copy.cancelCopy();
        } catch (SQLException ignored) {
            // the COPY's own error is the one to report
        }
    }

    private static void rollbackQuietly(Connection conn) {
        try {
            conn.rollback();
        } catch (SQLException ignored) {
            // the connection is closed by the caller's retry path
        }
    }

    private void closeConnection() {
        if (connection != null) {
            try {
                connection.close();
            } catch (SQLException ignored) {
                // already broken
            }
            connection = null;
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ConnectException("interrupted between retries", e);
        }
    }

    @Override
    public void stop() {
        closeConnection();
    }
}
