package dev.llmrelay.gateway.keys;

import java.time.Instant;

/** What a key has used of its budget in the period holding {@code now} (implemented by the limits). */
public interface BudgetUsage {

    long used(ApiKey key, Instant now);
}
