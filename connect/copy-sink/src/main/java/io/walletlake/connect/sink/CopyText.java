package io.walletlake.connect.sink;

import java.math.BigDecimal;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.StringJoiner;

import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.DataException;

/**
 * One value schema's rows in COPY's text format, and the column list they fill.
 *
 * <p>Pure: no I/O. Columns are the schema's fields, in order, under the same names. Timestamps are
 * written as UTC with an explicit offset, so the session's time zone never matters.
 */
final class CopyText {
    private enum Kind { STRING, INTEGER, FLOAT, BOOLEAN, DECIMAL, DATE, TIME, TIMESTAMP }

    private final Schema schema;
    private final List<Field> fields;
    private final Kind[] kinds;
    private final List<String> columns = new ArrayList<>();

    /** Throws ConnectException when the schema cannot be written: the task's config or the topic is wrong, not a record. */
    CopyText(Schema schema, List<String> keyFields) {
        if (schema == null || schema.type() != Schema.Type.STRUCT) {
            throw new ConnectException("the record value must be a struct with a schema, got " + (schema == null ? "no schema" : schema.type()));
        }
        if (keyFields.isEmpty()) throw new ConnectException("no key fields");
        this.keyFields = new ArrayList<>(keyFields.size());
        for (String k : keyFields) {
            if (schema.field(k) == null) {
                throw new ConnectException("the records' schema " + schema.name() + " has no field " + k + ", which primary.key.fields names");
            }
            this.keyFields.add(schema.field(k));
        }
        this.schema = schema;
        this.fields = schema.fields();
        this.kinds = new Kind[fields.size()];
        for (int i = 0; i < kinds.length; i++) {
            Field f = fields.get(i);
            kinds[i] = kindOf(f);
            columns.add(f.name());
        }
    }

    Schema schema() {
        return schema;
    }

    List<String> columns() {
        return columns;
    }

    private static Kind kindOf(Field f) {
        Schema s = f.schema();
        String logical = s.name();
        if (org.apache.kafka.connect.data.Timestamp.LOGICAL_NAME.equals(logical)) return Kind.TIMESTAMP;
        if (org.apache.kafka.connect.data.Date.LOGICAL_NAME.equals(logical)) return Kind.DATE;
        if (org.apache.kafka.connect.data.Decimal.LOGICAL_NAME.equals(logical)) return Kind.DECIMAL;
        if (org.apache.kafka.connect.data.Time.LOGICAL_NAME.equals(logical)) return Kind.TIME;
        if (logical != null && logical.startsWith("org.apache.kafka.connect.data.")) {
            throw new ConnectException("field " + f.name() + " has the logical type " + logical + ", which this sink does not map to a column");
        }
        switch (s.type()) {
            case STRING: return Kind.STRING;
            case INT8: case INT16: case INT32: case INT64: return Kind.INTEGER;
            case FLOAT32: case FLOAT64: return Kind.FLOAT;
            case BOOLEAN: return Kind.BOOLEAN;
            default:
                throw new ConnectException("field " + f.name() + " has type " + s.type() + (logical == null ? "" : " (" + logical + ")")
                    + ", which this sink does not map to a column");
        }
    }

    private final List<Field> keyFields;

    /** The record's key (primary.key.fields): a value, or a list of them; DataException when a part is null. */
    Object key(Struct value) {
        if (keyFields.size() == 1) return keyPart(value, keyFields.get(0));
        List<Object> key = new ArrayList<>(keyFields.size());
        for (Field f : keyFields) key.add(keyPart(value, f));
        return key;
    }

    private static Object keyPart(Struct value, Field field) {
        Object part = value.get(field);
        if (part == null) throw new DataException("the record has no value for the key field " + field.name());
        return part;
    }

    /** Appends the row for `value`, or leaves `out` as it was and throws DataException. */
    void append(Struct value, StringBuilder out) {
        int start = out.length();
        try {
            for (int i = 0; i < kinds.length; i++) {
                if (i > 0) out.append('\t');
                Object v = value.get(fields.get(i));
                if (v == null) {
                    out.append("\\N");
                    continue;
                }
                switch (kinds[i]) {
                    case STRING: appendEscaped((String) v, out); break;
                    case INTEGER: out.append(((Number) v).longValue()); break;
                    case FLOAT: out.append(v instanceof Float ? Float.toString((Float) v) : Double.toString((Double) v)); break;
                    case BOOLEAN: out.append(((Boolean) v) ? 't' : 'f'); break;
                    case DECIMAL: out.append(((BigDecimal) v).toPlainString()); break;
                    case DATE: appendDate(LocalDate.ofEpochDay(Math.floorDiv(((Date) v).getTime(), 86_400_000L)), out); break;
                    case TIME: appendTime(((Date) v).getTime(), out); break;
                    case TIMESTAMP: appendTimestamp(((Date) v).getTime(), out); break;
                    default: throw new IllegalStateException(kinds[i].name());
                }
            }
            out.append('\n');
        } catch (DataException e) {
            out.setLength(start);
            throw e;
        } catch (RuntimeException e) {
            out.setLength(start);
            throw new DataException("cannot write the record's value as a row: " + e, e);
        }
    }

    /** COPY text format: backslash, tab, newline and carriage return escaped. */
    static void appendEscaped(String s, StringBuilder out) {
        for (int i = 0, n = s.length(); i < n; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\': out.append("\\\\"); break;
                case '\t': out.append("\\t"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                default: out.append(c);
            }
        }
    }

    private static void appendDate(LocalDate d, StringBuilder out) {
        int year = d.getYear();
        if (year < 1 || year > 9999) {
            throw new DataException("a date outside the years 1-9999 this sink writes"); // no value: messages reach logs
        }
        pad(year, 4, out);
        out.append('-');
        pad(d.getMonthValue(), 2, out);
        out.append('-');
        pad(d.getDayOfMonth(), 2, out);
    }

    /** yyyy-MM-dd HH:mm:ss.SSS+00: the millisecond instant a Connect Timestamp holds, in UTC. */
    static void appendTimestamp(long epochMillis, StringBuilder out) {
        long seconds = Math.floorDiv(epochMillis, 1000L);
        int millis = (int) Math.floorMod(epochMillis, 1000L);
        LocalDateTime t = LocalDateTime.ofEpochSecond(seconds, 0, ZoneOffset.UTC);
        appendDate(t.toLocalDate(), out);
        out.append(' ');
        pad(t.getHour(), 2, out);
        out.append(':');
        pad(t.getMinute(), 2, out);
        out.append(':');
        pad(t.getSecond(), 2, out);
        out.append('.');
        pad(millis, 3, out);
        out.append("+00");
    }

    /** HH:mm:ss.SSS: a Connect Time holds the milliseconds since midnight. */
    static void appendTime(long millisOfDay, StringBuilder out) {
        if (millisOfDay < 0 || millisOfDay >= 86_400_000L) {
            throw new DataException("a time of day outside 00:00-24:00");
        }
        int ms = (int) millisOfDay;
        pad(ms / 3_600_000, 2, out);
        out.append(':');
        pad(ms / 60_000 % 60, 2, out);
        out.append(':');
        pad(ms / 1000 % 60, 2, out);
        out.append('.');
        pad(ms % 1000, 3, out);
    }

    static void pad(int value, int width, StringBuilder out) {
        for (int limit = 10, w = 1; w < width; w++, limit *= 10) {
            if (value < limit) out.append('0');
        }
        out.append(value);
    }

    static String quoteIdentifier(String name) {
        return '"' + name.replace("\"", "\"\"") + '"';
    }

    /** A possibly schema-qualified table name, each part quoted. */
    static String quoteTable(String table) {
        StringJoiner j = new StringJoiner(".");
        for (String part : table.split("\\.", -1)) {
            j.add(quoteIdentifier(part));
        }
        return j.toString();
    }
}
