package dev.llmrelay.gateway.ratelimit;

/**
 * Tokens an admitted request holds of its key's budget: it may produce at most {@link #completionPerChoice}
 * tokens a choice (the upstream is told so), and {@link #settle} replaces the hold with what it really used.
 */
public interface BudgetReservation {

    /** A key without a budget: nothing held, no cap. */
    BudgetReservation NONE = new BudgetReservation() {
        @Override
        public boolean limited() {
            return false;
        }

        @Override
        public long completionPerChoice() {
            return Long.MAX_VALUE;
        }

        @Override
        public void settle(long actualTokens) {
        }
    };

    /** Whether a budget applies (the request's max_tokens must then be {@link #completionPerChoice}). */
    boolean limited();

    long completionPerChoice();

    /** Charges what the request used (0 for a refusal after admission) and gives back the rest. Idempotent. */
    void settle(long actualTokens);
}
