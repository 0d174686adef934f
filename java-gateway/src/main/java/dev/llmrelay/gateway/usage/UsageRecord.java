package dev.llmrelay.gateway.usage;

import java.time.Instant;

import io.swagger.v3.oas.annotations.media.Schema;

/**
 * One request's usage. {@code usageSource} is {@code reported} (the upstream's usage), {@code counted}
 * (no usage arrived, e.g. a cut stream: completion tokens are the content chunks relayed, one token per
 * chunk as model-service streams them, and the prompt is the gateway's estimate) or {@code aggregated}
 * (requests refused before a key was known, {@code requestCount} of them, see
 * {@link UsageRecorder#recordRefused}).
 */
public record UsageRecord(
        String requestId,
        @Schema(types = {"integer", "null"}, format = "int64", description = "null: refused before a key was known")
        Long keyId,
        String endpoint,
        @Schema(types = {"string", "null"}, description = "null: no upstream was reached") String upstream,
        @Schema(types = {"string", "null"}) String model,
        boolean streamed,
        int promptTokens,
        int completionTokens,
        String usageSource,
        EndReason endReason,
        int httpStatus,
        @Schema(types = {"integer", "null"}, format = "int64", description = "null: no content was relayed")
        Long ttftMs,
        long durationMs,
        Instant createdAt,
        @Schema(description = "requests this row stands for: 1, or the count of an aggregated row")
        int requestCount) {

    /** One request's row. */
    public UsageRecord(String requestId, Long keyId, String endpoint, String upstream, String model,
            boolean streamed, int promptTokens, int completionTokens, String usageSource, EndReason endReason,
            int httpStatus, Long ttftMs, long durationMs, Instant createdAt) {
        this(requestId, keyId, endpoint, upstream, model, streamed, promptTokens, completionTokens, usageSource,
                endReason, httpStatus, ttftMs, durationMs, createdAt, 1);
    }

    public int totalTokens() {
        return promptTokens + completionTokens;
    }
}
