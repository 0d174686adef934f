package dev.llmrelay.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.HashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.keys.Budget;
import dev.llmrelay.gateway.system.GatewayProperties.Limits.StoreFailure;
import dev.llmrelay.gateway.system.OpenAiException;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/** Token budgets on the in-memory store, with a clock the test moves and usage rows it writes. */
class TokenBudgetsTest {

    private static final class MovableClock extends Clock {
        Instant now;

        MovableClock(Instant now) {
            this.now = now;
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }

    private final MovableClock clock = new MovableClock(Instant.parse("2026-12-07T23:59:00Z"));
    /** usage rows: tokens per key written at or after an instant (the test's bookkeeping) */
    private final Map<Long, Long> rowsToday = new HashMap<>();
    private final TokenBudgets budgets = new TokenBudgets(new InMemoryLimitStore(), StoreFailure.FAIL_OPEN,
            Duration.ofSeconds(5), (keyId, from) -> from.isBefore(Instant.parse("2026-12-08T00:00:00Z"))
                    ? rowsToday.getOrDefault(keyId, 0L) : 0L,
            new SimpleMeterRegistry(), clock);

    private static ApiKey key(long id, long tokens, Budget.Period period) {
        return new ApiKey(id, "k", "sk-relay-x", 100, 1_000_000, 10, true, Instant.EPOCH, null, false,
                new Budget(tokens, period));
    }

    @Test
    void aReservationIsCappedByWhatIsLeftAndSettlingGivesBackTheRest() {
        ApiKey key = key(1, 1000, Budget.Period.DAY);
        BudgetReservation first = budgets.reserve(key, 100, 1, 600); // holds 700
        assertThat(first.completionPerChoice()).isEqualTo(600);
        assertThat(budgets.used(key, clock.now)).isEqualTo(700);
        BudgetReservation second = budgets.reserve(key, 100, 2, 600); // 300 left: 100 prompt + 2 x 100
        assertThat(second.completionPerChoice()).isEqualTo(100);
        assertThat(budgets.used(key, clock.now)).isEqualTo(1000);
        assertThatThrownBy(() -> budgets.reserve(key, 1, 1, 1)).isInstanceOf(OpenAiException.class);

        first.settle(150); // used 150 of its 700
        first.settle(10); // settled once
        assertThat(budgets.used(key, clock.now)).isEqualTo(450);
        second.settle(0); // refused after admission: all of it back
        assertThat(budgets.used(key, clock.now)).isEqualTo(150);
    }

    @Test
    void aSpentBudgetIs429InsufficientQuotaUntilMidnightUtc() {
        ApiKey key = key(2, 500, Budget.Period.DAY);
        rowsToday.put(2L, 450L); // the rows this period already hold: the counter starts there
        assertThat(budgets.used(key, clock.now)).isEqualTo(450);
        OpenAiException refused = null;
        try {
            budgets.reserve(key, 60, 1, 100); // needs at least 61, 50 are left
        } catch (OpenAiException e) {
            refused = e;
        }
        assertThat(refused).isNotNull();
        assertThat(refused.status()).isEqualTo(429);
        assertThat(refused.type()).isEqualTo("insufficient_quota");
        assertThat(refused.code()).isEqualTo("insufficient_quota");
        assertThat(refused.headers()).containsEntry("Retry-After", "61"); // 23:59:00 -> 00:00:00, rounded up
        assertThat(refused.getMessage()).contains("450 of 500").contains("2026-12-08T00:00:00Z");

        assertThat(budgets.reserve(key, 10, 1, 100).completionPerChoice()).isEqualTo(40); // what is left fits

        clock.now = Instant.parse("2026-12-08T00:00:01Z"); // a new day: a new counter
        assertThat(budgets.used(key, clock.now)).isZero();
        assertThat(budgets.reserve(key, 60, 1, 100).completionPerChoice()).isEqualTo(100);
    }

    @Test
    void aTotalBudgetIsRefusedWithoutRetryAfterAndNeverResets() {
        ApiKey key = key(3, 100, Budget.Period.TOTAL);
        budgets.reserve(key, 50, 1, 50).settle(100);
        clock.now = clock.now.plus(Duration.ofDays(400));
        try {
            budgets.reserve(key, 1, 1, 1);
            throw new AssertionError("admitted past a spent total budget");
        } catch (OpenAiException e) {
            assertThat(e.headers()).doesNotContainKey("Retry-After");
            assertThat(e.getMessage()).contains("in all");
        }
    }

    /** A shared store that cannot be reached. */
    private static final class UnreachableStore implements LimitStore {
        private static LimitStoreUnavailableException down() {
            return new LimitStoreUnavailableException("down", null);
        }

        @Override
        public Decision admit(String keyId, Limits limits, long reserve) {
            throw down();
        }

        @Override
        public void settle(String keyId, Limits limits, long difference) {
            throw down();
        }

        @Override
        public void release(String keyId, String lease) {
            throw down();
        }

        @Override
        public BudgetGrant reserveBudget(String keyId, String period, long limit, long want, long atLeast) {
            throw down();
        }

        @Override
        public void settleBudget(String keyId, String period, long difference) {
            throw down();
        }

        @Override
        public void seedBudget(String keyId, String period, long used, long ttlMillis) {
            throw down();
        }

        @Override
        public long budgetUsed(String keyId, String period) {
            throw down();
        }
    }

    @Test
    void withTheStoreDownFailOpenCountsOnThisInstanceFromTheRowsAndFailClosedRefuses() {
        rowsToday.put(5L, 900L);
        ApiKey key = key(5, 1000, Budget.Period.DAY);
        TokenBudgets open = new TokenBudgets(new UnreachableStore(), StoreFailure.FAIL_OPEN, Duration.ofSeconds(5),
                (keyId, from) -> rowsToday.getOrDefault(keyId, 0L), new SimpleMeterRegistry(), clock);
        assertThat(open.reserve(key, 50, 1, 500).completionPerChoice()).isEqualTo(50); // 100 left per the rows
        assertThatThrownBy(() -> open.reserve(key, 1, 1, 1)).isInstanceOf(OpenAiException.class)
                .extracting(e -> ((OpenAiException) e).code()).isEqualTo("insufficient_quota");
        assertThat(open.used(key, clock.now)).isEqualTo(1000);

        TokenBudgets closed = new TokenBudgets(new UnreachableStore(), StoreFailure.FAIL_CLOSED, Duration.ofSeconds(5),
                (keyId, from) -> 0L, new SimpleMeterRegistry(), clock);
        assertThatThrownBy(() -> closed.reserve(key, 1, 1, 1)).isInstanceOf(OpenAiException.class)
                .satisfies(e -> {
                    assertThat(((OpenAiException) e).status()).isEqualTo(503);
                    assertThat(((OpenAiException) e).code()).isEqualTo("limits_unavailable");
                    assertThat(((OpenAiException) e).headers()).containsEntry("Retry-After", "5");
                });
    }

    @Test
    void aKeyWithoutABudgetHoldsNothing() {
        ApiKey key = new ApiKey(4, "k", "sk-relay-x", 100, 1_000_000, 10, true, Instant.EPOCH, null);
        BudgetReservation none = budgets.reserve(key, 1_000_000, 1, 1_000_000);
        assertThat(none.limited()).isFalse();
        assertThat(none).isSameAs(BudgetReservation.NONE);
    }
}
