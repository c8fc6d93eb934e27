package io.walletlake.connect.sink;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
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
 * Writes each batch the worker hands over in one transaction: COPY into a session temp table, then
 * INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE (one statement; one more for each further
 * record of a key within the batch), then COMMIT. put() returns only after the commit, so the
 * offsets the worker commits next are always in Postgres (at least once; the upsert makes a
 * replay harmless).
 *
 * <p>The target's triggers see ordinary INSERT and UPDATE statements: the row trigger that keeps
 * the newest state judges every record of a key in the topic's order, and the statement triggers
 * that mark dirty dts work as with any JDBC sink.
 *
 * <p>Failures: a lost connection or another transient error (isTransient) retries the batch
 * (max.retries, every retry.backoff.ms) on a new connection, from the first row not yet committed,
 * then fails the task; any other error fails it at once. A batch Postgres refuses for its data
 * (SQLSTATE classes 22 and 23, e.g. a CHECK constraint) is split until the refused records are
 * alone; each goes to the dead-letter topic with the reason, and every other record loads. When
 * every record of a batch of several is refused, the cause is the table or the topic, not the
 * records: the task fails and none is dead-lettered. Without a dead-letter topic
 * (errors.tolerance=none) a refused record fails the task. Logs name offsets and SQLSTATEs, never
 * values.
 */
public final class PostgresCopySinkTask extends SinkTask {
    private static final Logger log = LoggerFactory.getLogger(PostgresCopySinkTask.class);
    private static final String STAGING = "copy_sink_staging";
    private static final String ROUND = "copy_sink_round";

    private CopySinkConfig config;
    private ErrantRecordReporter reporter;
    private final Map<Schema, CopyText> formats = new HashMap<>();
    // Per connection: the staging table and the upsert are made for one format at a time.
    private Connection connection;
    private CopyText stagedFor;
    private PreparedStatement upsert;

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
            if (!(record.value() instanceof Struct)) {
                refuse(record, new DataException(record.value() == null
                    ? "a record without a value (a tombstone): this sink never deletes rows"
                    : "the record value is a " + record.value().getClass().getSimpleName() + ", not a struct with a schema"), "no struct");
                continue;
            }
            batch.add(record);
            values.add((Struct) record.value());
        }
        // Runs of one schema (a topic with schema.content has one) share the statements.
        int start = 0;
        for (int i = 1; i <= values.size(); i++) {
            if (i == values.size() || !Objects.equals(values.get(i).schema(), values.get(start).schema())) {
                load(batch.subList(start, i), values.subList(start, i));
                start = i;
            }
        }
    }

    /**
     * A run of records of one schema, each encoded once as a COPY row: row i is
     * bytes[ends[i-1], ends[i]). Its round is 1 for the first record of its key in the run, 2 for
     * the second, and so on. Rows before `committed` are in Postgres or refused.
     */
    private static final class Run {
        final List<SinkRecord> records = new ArrayList<>();
        int[] ends = new int[64];
        int[] rounds = new int[64];
        byte[] bytes = new byte[1 << 20];
        int committed;
        final Map<Integer, SQLException> refused = new java.util.TreeMap<>();

        int size() {
            return records.size();
        }

        int start(int row) {
            return row == 0 ? 0 : ends[row - 1];
        }

        void add(SinkRecord record, byte[] row, int round) {
            int i = records.size();
            if (i == ends.length) {
                ends = Arrays.copyOf(ends, i * 2);
                rounds = Arrays.copyOf(rounds, i * 2);
            }
            int at = start(i);
            if (at + row.length > bytes.length) bytes = Arrays.copyOf(bytes, Math.max(bytes.length * 2, at + row.length));
            System.arraycopy(row, 0, bytes, at, row.length);
            records.add(record);
            ends[i] = at + row.length;
            rounds[i] = round;
        }
    }

    private void load(List<SinkRecord> records, List<Struct> values) {
        CopyText format = formats.computeIfAbsent(values.get(0).schema(), s -> new CopyText(s, config.primaryKey()));
        Run run = new Run();
        Map<Object, Integer> seen = new HashMap<>();
        StringBuilder row = new StringBuilder(512);
        for (int i = 0; i < records.size(); i++) {
            row.setLength(0);
            Object key;
            try {
                key = format.key(values.get(i));
                format.append(values.get(i), row);
            } catch (DataException e) {
                refuse(records.get(i), e, "not writable");
                continue;
            }
            int round = seen.merge(key, 1, Integer::sum);
            row.setLength(row.length() - 1); // the round goes after the value's columns
            row.append('\t').append(round).append('\n');
            run.add(records.get(i), row.toString().getBytes(StandardCharsets.UTF_8), round);
        }
        if (run.size() == 0) return;
        for (int attempt = 0; ; attempt++) {
            try {
                writeOrSplit(run, run.committed, run.size(), format);
                break;
            } catch (SQLException e) {
                closeConnection();
                if (!isTransient(e)) {
                    throw new ConnectException("a batch of " + run.size() + " records cannot load: " + describe(e), e);
                }
                if (attempt >= config.maxRetries()) {
                    throw new ConnectException("a batch of " + run.size() + " records did not load after "
                        + (attempt + 1) + " attempts: " + describe(e), e);
                }
                log.warn("a batch of {} records did not load (SQLSTATE {}); retry {} of {} in {} ms from row {}", run.size(),
                    e.getSQLState(), attempt + 1, config.maxRetries(), config.retryBackoffMs(), run.committed);
                sleep(config.retryBackoffMs());
            }
        }
        if (run.size() > 1 && run.refused.size() == run.size()) {
            SQLException first = run.refused.values().iterator().next();
            throw new ConnectException("Postgres refused every one of a batch of " + run.size() + " records (first: SQLSTATE "
                + first.getSQLState() + "): the table and the records disagree, not a record; none was dead-lettered", first);
        }
        for (Map.Entry<Integer, SQLException> e : run.refused.entrySet()) {
            SQLException cause = e.getValue();
            refuse(run.records.get(e.getKey()), new DataException("Postgres refused the row: " + describe(cause), cause),
                "SQLSTATE " + cause.getSQLState());
        }
    }

    /** Loads rows [from, to) not yet committed; on a data error, its halves, down to the single rows Postgres refuses. */
    private void writeOrSplit(Run run, int from, int to, CopyText format) throws SQLException {
        from = Math.max(from, run.committed);
        if (from >= to) return;
        try {
            write(run, from, to, format);
            run.committed = to;
        } catch (SQLException e) {
            if (!isDataError(e)) throw e;
            if (to - from == 1) {
                run.refused.put(from, e);
                run.committed = to;
                return;
            }
            int half = from + (to - from) / 2;
            writeOrSplit(run, from, half, format);
            writeOrSplit(run, half, to, format);
        }
    }

    /**
     * One transaction: rows [from, to) into the staging table, then one upsert per round present,
     * in order. A key's records thus reach the table one statement after another, in the topic's
     * order, and the table's triggers judge each (the newest-state rule sees every record).
     */
    private void write(Run run, int from, int to, CopyText format) throws SQLException {
        Connection conn = connection();
        boolean done = false;
        try {
            prepare(conn, format);
            CopyIn copy = conn.unwrap(PGConnection.class).getCopyAPI()
                .copyIn("COPY pg_temp." + STAGING + " (" + columnList(format.columns()) + ", " + ROUND + ") FROM STDIN");
            try {
                copy.writeToCopy(run.bytes, run.start(from), run.ends[to - 1] - run.start(from));
                copy.endCopy();
            } finally {
                cancelIfActive(copy);
            }
            BitSet rounds = new BitSet();
            for (int i = from; i < to; i++) rounds.set(run.rounds[i]);
            for (int r = rounds.nextSetBit(0); r >= 0; r = rounds.nextSetBit(r + 1)) {
                upsert.setInt(1, r);
                upsert.executeUpdate();
            }
            conn.commit(); // ON COMMIT DELETE ROWS empties the staging table
            done = true;
        } finally {
            if (!done) rollbackQuietly(conn);
        }
    }

    /** The staging table and the upsert for this format, made once per connection and format. */
    private void prepare(Connection conn, CopyText format) throws SQLException {
        if (stagedFor == format) return;
        if (upsert != null) {
            upsert.close();
            upsert = null;
        }
        stagedFor = null;
        String cols = columnList(format.columns());
        String table = CopyText.quoteTable(config.table());
        try (Statement st = conn.createStatement()) {
            // The record's columns with the table's types, and no constraints or defaults: the
            // table itself checks the rows when the upsert writes them. Never logged, emptied by
            // every commit.
            st.execute("DROP TABLE IF EXISTS pg_temp." + STAGING);
            st.execute("CREATE TEMP TABLE " + STAGING + " ON COMMIT DELETE ROWS AS SELECT " + cols + ", 0 AS " + ROUND
                + " FROM " + table + " WITH NO DATA");
        }
        conn.commit();
        StringJoiner key = new StringJoiner(", ");
        for (String k : config.primaryKey()) key.add(CopyText.quoteIdentifier(k));
        StringJoiner set = new StringJoiner(", ");
        for (String c : format.columns()) {
            if (!config.primaryKey().contains(c)) {
                String q = CopyText.quoteIdentifier(c);
                set.add(q + " = EXCLUDED." + q);
            }
        }
        upsert = conn.prepareStatement("INSERT INTO " + table + " (" + cols + ") SELECT " + cols + " FROM pg_temp." + STAGING
            + " WHERE " + ROUND + " = ? ON CONFLICT (" + key + ") " + (set.length() == 0 ? "DO NOTHING" : "DO UPDATE SET " + set));
        stagedFor = format;
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
            // Errors carry no row values ("Failing row contains ..."): they reach logs and task status.
            props.setProperty("logServerErrorDetail", "false");
            // A half-open connection fails instead of hanging the task; a batch takes well under a second.
            props.setProperty("connectTimeout", "10");
            props.setProperty("socketTimeout", "120");
            props.setProperty("tcpKeepAlive", "true");
            Connection conn = DriverManager.getConnection(config.url(), props);
            conn.setAutoCommit(false);
            connection = conn;
            stagedFor = null;
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

    /** The record to the dead-letter topic with `reason`; the log line names it by offset and `code` only. */
    private void refuse(SinkRecord record, DataException reason, String code) {
        if (reporter == null) throw reason;
        try {
            reporter.report(record, reason).get(); // in the dead-letter topic before the offset can commit
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ConnectException("interrupted while reporting a refused record", e);
        } catch (ExecutionException e) {
            throw new ConnectException("could not report a refused record to the dead-letter topic", e.getCause());
        }
        log.warn("sent the record at {}-{} offset {} to the dead-letter topic ({})", record.topic(), record.kafkaPartition(),
            record.kafkaOffset(), code);
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
                connection.close(); // closes the prepared upsert too
            } catch (SQLException ignored) {
                // already broken
            }
            connection = null;
            upsert = null;
            stagedFor = null;
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
