package dev.llmrelay.gateway.keys;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.keys.Budget.Period;

/** Budget periods are UTC calendar days and months, or the key's whole life. */
class BudgetPeriodTest {

    private static final Instant LAST_SECOND_OF_2026 = Instant.parse("2026-12-31T23:59:59.999Z");

    @Test
    void aDayRunsFromUtcMidnightToTheNext() {
        assertThat(Period.DAY.start(LAST_SECOND_OF_2026)).isEqualTo(Instant.parse("2026-12-31T00:00:00Z"));
        assertThat(Period.DAY.resetsAt(LAST_SECOND_OF_2026)).isEqualTo(Instant.parse("2027-01-01T00:00:00Z"));
        assertThat(Period.DAY.id(LAST_SECOND_OF_2026)).isEqualTo("d2026-12-31");
        Instant midnight = Instant.parse("2027-01-01T00:00:00Z");
        assertThat(Period.DAY.id(midnight)).isEqualTo("d2027-01-01");
        assertThat(Period.DAY.start(midnight)).isEqualTo(midnight);
    }

    @Test
    void aMonthRunsFromTheFirstToTheFirstOfTheNext() {
        assertThat(Period.MONTH.start(LAST_SECOND_OF_2026)).isEqualTo(Instant.parse("2026-12-01T00:00:00Z"));
        assertThat(Period.MONTH.resetsAt(LAST_SECOND_OF_2026)).isEqualTo(Instant.parse("2027-01-01T00:00:00Z"));
        assertThat(Period.MONTH.id(LAST_SECOND_OF_2026)).isEqualTo("m2026-12");
        Instant leapDay = Instant.parse("2028-02-29T12:00:00Z");
        assertThat(Period.MONTH.resetsAt(leapDay)).isEqualTo(Instant.parse("2028-03-01T00:00:00Z"));
    }

    @Test
    void aTotalBudgetNeverResets() {
        assertThat(Period.TOTAL.start(LAST_SECOND_OF_2026)).isEqualTo(Instant.EPOCH);
        assertThat(Period.TOTAL.resetsAt(LAST_SECOND_OF_2026)).isNull();
        assertThat(Period.TOTAL.id(LAST_SECOND_OF_2026)).isEqualTo("total");
    }

    @Test
    void periodsAreWrittenInLowerCase() {
        assertThat(Period.ofWire("day")).isEqualTo(Period.DAY);
        assertThat(Period.ofWire("month")).isEqualTo(Period.MONTH);
        assertThat(Period.ofWire("total")).isEqualTo(Period.TOTAL);
        assertThat(Period.ofWire("DAY")).isNull();
        assertThat(Period.ofWire("week")).isNull();
        assertThat(Period.ofWire(null)).isNull();
    }
}
