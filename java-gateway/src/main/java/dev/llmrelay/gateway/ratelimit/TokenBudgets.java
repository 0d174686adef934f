package dev.llmrelay.gateway.ratelimit;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.keys.Budget;
import dev.llmrelay.gateway.keys.BudgetUsage;
import dev.llmrelay.gateway.ratelimit.LimitStore.BudgetGrant;
import dev.llmrelay.gateway.system.GatewayProperties.Limits.StoreFailure;
import dev.llmrelay.gateway.system.OpenAiException;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * Token budgets per key (tokens per UTC day, month or in all), never exceeded, on one gateway or many: admission
 * reserves the most the request can use (its prompt's upper bound plus each choice's completion) from a counter
 * in the {@link LimitStore}, capped by what is left, and the request's {@code max_tokens} is lowered to fit, so
 * no answer can outgrow its reservation; the end settles the reservation to the real usage (a refund, or the
 * exact count of a cut stream). A counter the store lacks (first use this period, a restarted Redis) is seeded
 * from the usage rows. When a shared store is unreachable, the limits' {@link StoreFailure} policy applies.
 */
public class TokenBudgets implements BudgetUsage {

    private static final Logger log = LoggerFactory.getLogger(TokenBudgets.class);
    private static final int SEED_TRIES = 3;

    private final LimitStore store;
    private final LimitStore local;
    private final StoreFailure onFailure;
    private final Duration retryAfter;
    private final UsedTokens usage;
    private final MeterRegistry meters;
    private final Clock clock;

    /** Tokens a key's usage rows hold from an instant on ({@code UsageRecorder::tokensSince}). */
    @FunctionalInterface
    interface UsedTokens {
        long since(long keyId, Instant from);
    }

    TokenBudgets(LimitStore store, StoreFailure onFailure, Duration retryAfter, UsedTokens usage,
            MeterRegistry meters, Clock clock) {
        this.store = store;
        this.local = store instanceof InMemoryLimitStore ? store : new InMemoryLimitStore();
        this.onFailure = onFailure;
        this.retryAfter = retryAfter;
        this.usage = usage;
        this.meters = meters;
        this.clock = clock;
    }

    /**
     * Reserves a request's most: {@code promptBound} (an upper bound of its prompt tokens) plus {@code choices}
     * times {@code completionPerChoice}, or what is left when less, as long as one token a choice fits.
     *
     * @throws OpenAiException 429 {@code insufficient_quota} (Retry-After: the period's end) when it does not;
     *         503 {@code limits_unavailable} when the store is unreachable and the policy is fail-closed
     */
    public BudgetReservation reserve(ApiKey key, long promptBound, int choices, long completionPerChoice) {
        Budget budget = key.budget();
        if (budget == null) {
            return BudgetReservation.NONE;
        }
        Instant now = clock.instant();
        String keyId = Long.toString(key.id());
        String period = budget.period().id(now);
        long want = promptBound + choices * Math.max(1, completionPerChoice);
        long atLeast = promptBound + choices;
        LimitStore decidedBy = store;
        BudgetGrant grant;
        try {
            grant = reserve(store, key, now, want, atLeast);
        } catch (LimitStoreUnavailableException e) {
            meters.counter("gateway.ratelimit.store.unavailable", "policy", onFailure.name().toLowerCase()).increment();
            if (onFailure == StoreFailure.FAIL_CLOSED) {
                throw new OpenAiException(503, "server_error", "limits_unavailable", null,
                        "Token budgets cannot be checked right now; retry later",
                        Map.of("Retry-After", Long.toString(Math.max(1, retryAfter.toSeconds()))));
            }
            log.debug("limit store unreachable, budget of key {} checked on this instance: {}", keyId, e.getMessage());
            decidedBy = local;
            grant = reserve(local, key, now, want, atLeast);
        }
        if (grant.granted() == 0) {
            meters.counter("gateway.budget.rejections", "period", budget.period().wire()).increment();
            throw exhausted(budget, grant.used(), atLeast, now);
        }
        long perChoice = (grant.granted() - promptBound) / choices;
        return new Reservation(decidedBy, keyId, period, grant.granted(), perChoice);
    }

    private BudgetGrant reserve(LimitStore on, ApiKey key, Instant now, long want, long atLeast) {
        Budget budget = key.budget();
        String keyId = Long.toString(key.id());
        String period = budget.period().id(now);
        BudgetGrant grant = on.reserveBudget(keyId, period, budget.tokens(), want, atLeast);
        for (int i = 0; grant.unseeded() && i < SEED_TRIES; i++) {
            on.seedBudget(keyId, period, usedPerRows(key, now), ttlMillis(budget, now));
            grant = on.reserveBudget(keyId, period, budget.tokens(), want, atLeast);
        }
        return grant.unseeded() ? new BudgetGrant(0, budget.tokens(), false) : grant;
    }

    /** Tokens the key's usage rows hold for the period holding {@code now}. */
    private long usedPerRows(ApiKey key, Instant now) {
        return usage.since(key.id(), key.budget().period().start(now));
    }

    /** A counter outlives its period by a day (a late settle still finds it), a total one never expires. */
    private static long ttlMillis(Budget budget, Instant now) {
        Instant end = budget.period().resetsAt(now);
        return end == null ? 0 : Duration.between(now, end).plusDays(1).toMillis();
    }

    private static OpenAiException exhausted(Budget budget, long used, long atLeast, Instant now) {
        Instant resets = budget.period().resetsAt(now);
        String message = "This key's token budget is spent: " + Math.min(used, budget.tokens()) + " of "
                + budget.tokens() + " tokens used " + (budget.period() == Budget.Period.TOTAL ? "in all"
                : "this " + budget.period().wire() + " (UTC)") + ", and this request needs at least " + atLeast
                + (resets == null ? ". Ask the operator for a larger budget." : "; it resets at " + resets + ".");
        Map<String, String> headers = resets == null ? Map.of()
                : Map.of("Retry-After", Long.toString(Math.max(1, Duration.between(now, resets).toSeconds() + 1)));
        return new OpenAiException(429, "insufficient_quota", "insufficient_quota", null, message, headers);
    }

    @Override
    public long used(ApiKey key, Instant now) {
        Budget budget = key.budget();
        if (budget == null) {
            return 0;
        }
        String keyId = Long.toString(key.id());
        String period = budget.period().id(now);
        for (LimitStore on : store == local ? new LimitStore[] {store} : new LimitStore[] {store, local}) {
            try {
                long used = on.budgetUsed(keyId, period);
                if (used < 0) {
                    on.seedBudget(keyId, period, usedPerRows(key, now), ttlMillis(budget, now));
                    used = Math.max(0, on.budgetUsed(keyId, period));
                }
                return used;
            } catch (LimitStoreUnavailableException e) {
                log.debug("limit store unreachable, budget use of key {} read on this instance", keyId);
            }
        }
        return usedPerRows(key, now);
    }

    private final class Reservation implements BudgetReservation {
        private final LimitStore store;
        private final String keyId;
        private final String period;
        private final long reserved;
        private final long perChoice;
        private final AtomicBoolean settled = new AtomicBoolean();

        Reservation(LimitStore store, String keyId, String period, long reserved, long perChoice) {
            this.store = store;
            this.keyId = keyId;
            this.period = period;
            this.reserved = reserved;
            this.perChoice = perChoice;
        }

        @Override
        public boolean limited() {
            return true;
        }

        @Override
        public long completionPerChoice() {
            return perChoice;
        }

        @Override
        public void settle(long actualTokens) {
            if (!settled.compareAndSet(false, true)) {
                return;
            }
            long difference = Math.max(0, actualTokens) - reserved;
            if (difference == 0) {
                return;
            }
            if (difference > 0) {
                // the prompt's bound or the cap did not hold: counted, so the next request sees it
                meters.counter("gateway.budget.overruns").increment();
                log.warn("key {} used {} tokens more than its budget reservation", keyId, difference);
            }
            try {
                store.settleBudget(keyId, period, difference);
            } catch (LimitStoreUnavailableException e) {
                // the reservation stands as the charge: a refund is lost (never an overshoot)
                meters.counter("gateway.ratelimit.store.unavailable", "policy", "budget_settle").increment();
                log.debug("limit store unreachable, budget settle of {} tokens lost: {}", difference, e.getMessage());
            }
        }
    }
}
