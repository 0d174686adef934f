package dev.llmrelay.gateway.ratelimit;

/**
 * Where limit state lives, at the level of whole decisions so that a shared store can make each one
 * atomically (one Redis round trip): admit (one request, a token reservation and a stream slot, all or
 * nothing), settle a reservation, release a slot, or settle and release together. {@link InMemoryLimitStore} serves one gateway;
 * {@link RedisLimitStore} lets several instances share exact limits.
 */
interface LimitStore extends AutoCloseable {

    /** Admits one request for {@code keyId} reserving {@code reserve} tokens; nothing is taken on refusal. */
    Decision admit(String keyId, Limits limits, long reserve);

    /** Charges ({@code difference > 0}) or refunds ({@code < 0}) tokens against the key's minute. */
    void settle(String keyId, Limits limits, long difference);

    /** Frees the stream slot {@code lease} that {@link #admit} took. */
    void release(String keyId, String lease);

    /** Settles and releases a finished request at once (a shared store does both in one round trip). */
    default void finish(String keyId, Limits limits, long difference, String lease) {
        if (difference != 0) {
            settle(keyId, limits, difference);
        }
        release(keyId, lease);
    }

    /**
     * Reserves up to {@code want} tokens of a key's budget counter {@code period} whose limit is {@code limit}:
     * what is left when less, nothing when less than {@code atLeast} is left. A counter the store does not
     * hold yet (first use, expired, a restarted Redis) is not created: the answer says so, and the caller
     * seeds it from the usage rows ({@link #seedBudget}) and asks again.
     */
    BudgetGrant reserveBudget(String keyId, String period, long limit, long want, long atLeast);

    /** Charges ({@code difference > 0}) or refunds ({@code < 0}) a budget counter; a counter not held is left so. */
    void settleBudget(String keyId, String period, long difference);

    /** Sets a budget counter to {@code used} unless it exists; it expires {@code ttlMillis} from now (0: never). */
    void seedBudget(String keyId, String period, long used, long ttlMillis);

    /** A budget counter's tokens used, or -1 when the store does not hold it. */
    long budgetUsed(String keyId, String period);

    /**
     * The outcome of {@link #reserveBudget}: {@code granted} tokens reserved (0: refused), {@code used} the
     * counter after it; {@code unseeded}: the store holds no such counter (nothing reserved).
     */
    record BudgetGrant(long granted, long used, boolean unseeded) {
    }

    /** Stops background work and connections; state held elsewhere (leases, counters) stays. */
    @Override
    default void close() {
    }

    /** A key's limits; part of the state's identity, so changing a limit starts fresh counters. */
    record Limits(int requestsPerMinute, int tokensPerMinute, int maxConcurrentStreams) {
    }

    /**
     * The outcome of {@link #admit}.
     *
     * @param rejected          null when admitted, else the spent limit: requests, tokens or streams
     * @param requestsRemaining requests left this minute (after this one when admitted)
     * @param tokensRemaining   tokens left this minute (after the reservation when admitted)
     * @param nanosToReset      time to the next refill of the requests budget
     * @param nanosToWait       on refusal, time until the spent limit could admit this request
     * @param lease             the stream slot held, for {@link #release}
     */
    record Decision(String rejected, long requestsRemaining, long tokensRemaining, long nanosToReset,
            long nanosToWait, String lease) {

        boolean admitted() {
            return rejected == null;
        }
    }
}
