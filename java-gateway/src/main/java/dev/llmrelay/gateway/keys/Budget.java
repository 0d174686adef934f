package dev.llmrelay.gateway.keys;

import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.Locale;

/**
 * A key's token budget: at most {@code tokens} (prompt and completion together) per {@code period}. Periods are
 * UTC calendar days and months, or the key's whole life ({@code total}, never reset).
 */
public record Budget(long tokens, Period period) {

    public enum Period {
        DAY, MONTH, TOTAL;

        /** As written in the admin API: day, month, total. */
        public String wire() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The period named {@code wire}, or null for any other text. */
        public static Period ofWire(String wire) {
            for (Period period : values()) {
                if (period.wire().equals(wire)) {
                    return period;
                }
            }
            return null;
        }

        /** Where the period holding {@code now} began (the epoch for {@code total}). */
        public Instant start(Instant now) {
            LocalDate day = now.atZone(ZoneOffset.UTC).toLocalDate();
            return switch (this) {
                case DAY -> day.atStartOfDay(ZoneOffset.UTC).toInstant();
                case MONTH -> day.withDayOfMonth(1).atStartOfDay(ZoneOffset.UTC).toInstant();
                case TOTAL -> Instant.EPOCH;
            };
        }

        /** When the period holding {@code now} ends and the budget is whole again; null for {@code total}. */
        public Instant resetsAt(Instant now) {
            ZonedDateTime start = start(now).atZone(ZoneOffset.UTC);
            return switch (this) {
                case DAY -> start.plusDays(1).toInstant();
                case MONTH -> start.plusMonths(1).toInstant();
                case TOTAL -> null;
            };
        }

        /** The name of the period holding {@code now}: its counter's name in the store (d2026-12-07, m2026-12, total). */
        public String id(Instant now) {
            String start = start(now).toString(); // 2026-12-07T00:00:00Z
            return switch (this) {
                case DAY -> "d" + start.substring(0, 10);
                case MONTH -> "m" + start.substring(0, 7);
                case TOTAL -> "total";
            };
        }
    }
}
