package io.walletlake.connect.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.math.BigDecimal;
import java.util.Date;
import java.util.List;

import org.apache.kafka.connect.data.Decimal;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.data.Time;
import org.apache.kafka.connect.data.Timestamp;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.DataException;
import org.junit.jupiter.api.Test;

/** CopyText's rows in COPY's text format: pure, no database (the integration tests load them). */
class CopyTextTest {
    private static final Schema SCHEMA = SchemaBuilder.struct().name("t")
        .field("id", Schema.STRING_SCHEMA)
        .field("note", Schema.OPTIONAL_STRING_SCHEMA)
        .field("amount", Schema.INT64_SCHEMA)
        .field("score", Schema.OPTIONAL_FLOAT64_SCHEMA)
        .field("ok", Schema.BOOLEAN_SCHEMA)
        .field("at", Timestamp.builder().optional().build())
        .field("day", org.apache.kafka.connect.data.Date.builder().optional().build())
        .field("clock", Time.builder().optional().build())
        .field("price", Decimal.builder(2).optional().build())
        .build();

    private static String row(Struct value) {
        StringBuilder out = new StringBuilder();
        new CopyText(SCHEMA, List.of("id")).append(value, out);
        return out.toString();
    }

    private static Struct value() {
        return new Struct(SCHEMA).put("id", "p1").put("amount", 5L).put("ok", true);
    }

    @Test
    void nullsAreTheNullMarkerAndEveryRowEndsWithANewline() {
        assertEquals("p1\t\\N\t5\t\\N\tt\t\\N\t\\N\t\\N\t\\N\n", row(value()));
    }

    @Test
    void textEscapesBackslashTabNewlineAndCarriageReturnOnly() {
        String note = row(value().put("note", "a\\b\tc\nd\re \\N 'q' \"q\" Zürich 💳")).split("\t")[1];
        assertEquals("a\\\\b\\tc\\nd\\re \\\\N 'q' \"q\" Zürich 💳", note);
    }

    @Test
    void timestampsAreUtcWithMillisecondsAndAnExplicitOffset() {
        assertEquals("2026-12-05 23:59:59.999+00", field(value().put("at", new Date(1796515199999L)), 5));
        assertEquals("1970-01-01 00:00:00.000+00", field(value().put("at", new Date(0L)), 5));
        // Before the epoch: floor, not truncation (-1 ms is the last millisecond of 1969).
        assertEquals("1969-12-31 23:59:59.999+00", field(value().put("at", new Date(-1L)), 5));
        assertEquals("0001-01-01 00:00:00.000+00", field(value().put("at", new Date(-62135596800000L)), 5));
    }

    @Test
    void datesTimesDecimalsDoublesAndBooleans() {
        Struct v = value().put("day", new Date(-86_400_000L)).put("clock", new Date(3_723_004L))
            .put("price", new BigDecimal("-12.30")).put("score", 0.1 + 0.2).put("ok", false);
        String[] f = row(v).trim().split("\t");
        assertEquals("1969-12-31", f[6]);
        assertEquals("01:02:03.004", f[7]);
        assertEquals("-12.30", f[8]);
        assertEquals("0.30000000000000004", f[3]); // every digit Double.toString needs to round-trip
        assertEquals("f", f[4]);
        assertEquals("NaN", field(value().put("score", Double.NaN), 3));
        assertEquals("-Infinity", field(value().put("score", Double.NEGATIVE_INFINITY), 3));
    }

    @Test
    void aYearPostgresTextCannotTakeIsRefusedAndTheRowLeftOut() {
        StringBuilder out = new StringBuilder("kept");
        Struct v = value().put("at", new Date(253402300800000L)); // 10000-01-01
        assertThrows(DataException.class, () -> new CopyText(SCHEMA, List.of("id")).append(v, out));
        assertEquals("kept", out.toString());
    }

    @Test
    void padWritesLeadingZerosToTheWidth() {
        StringBuilder out = new StringBuilder();
        CopyText.pad(7, 3, out);
        CopyText.pad(42, 2, out);
        CopyText.pad(2026, 4, out);
        CopyText.pad(5, 4, out);
        assertEquals("007422026" + "0005", out.toString());
    }

    @Test
    void keysAreTheKeyFieldsAndAMissingPartIsTheRecordsFault() {
        CopyText text = new CopyText(SCHEMA, List.of("id", "amount"));
        assertEquals(List.of("p1", 5L), text.key(value()));
        assertEquals("p1", new CopyText(SCHEMA, List.of("id")).key(value()));
        assertThrows(DataException.class, () -> new CopyText(SCHEMA, List.of("note")).key(value()));
    }

    @Test
    void aSchemaTheSinkCannotWriteFailsTheTaskNotARecord() {
        assertThrows(ConnectException.class, () -> new CopyText(SCHEMA, List.of("payment_id")));
        assertThrows(ConnectException.class, () -> new CopyText(SCHEMA, List.of()));
        Schema nested = SchemaBuilder.struct().field("id", Schema.STRING_SCHEMA)
            .field("tags", SchemaBuilder.array(Schema.STRING_SCHEMA).build()).build();
        assertThrows(ConnectException.class, () -> new CopyText(nested, List.of("id")));
        assertThrows(ConnectException.class, () -> new CopyText(Schema.STRING_SCHEMA, List.of("id")));
    }

    @Test
    void identifiersAreQuotedWithTheirQuotesDoubled() {
        assertEquals("\"public\".\"curated_payments\"", CopyText.quoteTable("public.curated_payments"));
        assertEquals("\"a\"\"b\"", CopyText.quoteIdentifier("a\"b"));
    }

    private static String field(Struct value, int index) {
        return row(value).trim().split("\t", -1)[index];
    }
}
