package dev.llmrelay.gateway.usage;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import jakarta.annotation.PreDestroy;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Service;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

/**
 * Writes usage rows and the request metrics that go with them. Requests refused before a key is known
 * (401) are only counted, and written once a minute as one aggregated row per endpoint and cause: anyone
 * can send them, and one row (and log line) each would let a flood of bad keys fill the table.
 */
@Service
public class UsageRecorder {

    private static final Logger log = LoggerFactory.getLogger(UsageRecorder.class);

    private final UsageRepository repository;
    private final UsageWriter writer;
    private final UsageRollups rollups;
    private final MeterRegistry meters;
    /** Refusals without a key since the last flush, by what the aggregated row will say. */
    private final Map<Refusal, AtomicLong> keyless = new ConcurrentHashMap<>();

    private record Refusal(String endpoint, EndReason reason, int status) {
    }

    UsageRecorder(UsageRepository repository, UsageWriter writer, UsageRollups rollups, MeterRegistry meters) {
        this.rollups = rollups;
        this.repository = repository;
        this.writer = writer;
        this.meters = meters;
    }

    public void record(UsageRecord record) {
        count(record);
        log.info("request {} key={} upstream={} model={} end={} status={} prompt={} completion={} ({}) ttft_ms={} "
                        + "duration_ms={}", record.requestId(), record.keyId(), record.upstream(), record.model(),
                record.endReason(), record.httpStatus(), record.promptTokens(), record.completionTokens(),
                record.usageSource(), record.ttftMs(), record.durationMs());
        insert(record);
    }

    private void count(UsageRecord record) {
        meters.counter("gateway.requests", "endpoint", record.endpoint(), "end_reason", record.endReason().name())
                .increment();
        meters.counter("gateway.tokens", "kind", "prompt").increment(record.promptTokens());
        meters.counter("gateway.tokens", "kind", "completion").increment(record.completionTokens());
        if (record.ttftMs() != null) {
            Timer.builder("gateway.ttft").description("request start to the first content chunk relayed")
                    .tag("endpoint", record.endpoint()).publishPercentileHistogram()
                    .minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofMinutes(5))
                    .register(meters).record(record.ttftMs(), TimeUnit.MILLISECONDS);
        }
    }

    private void insert(UsageRecord record) {
        writer.write(record); // batched off the request path (UsageWriter)
    }

    /** Writes every row recorded so far (readers of usage, and tests, see them all). */
    public void flush() {
        writer.flush();
    }

    /**
     * A request refused before it reached an upstream (401, 429, 400). Without a key ({@code keyId} null)
     * it is counted in the metrics and in the next aggregated row, not written as a row of its own.
     */
    public void recordRefused(String requestId, Long keyId, String endpoint, String model, boolean streamed,
            EndReason reason, int status) {
        UsageRecord record = new UsageRecord(requestId, keyId, endpoint, null, model, streamed, 0, 0, "counted",
                reason, status, null, 0, Instant.now());
        if (keyId != null) {
            record(record);
            return;
        }
        count(record);
        keyless.computeIfAbsent(new Refusal(endpoint, reason, status), r -> new AtomicLong()).incrementAndGet();
    }

    /** Writes one row per endpoint and cause for the keyless refusals counted since the last flush. */
    @Scheduled(fixedRate = 60_000, initialDelay = 60_000)
    @PreDestroy
    synchronized void flushUnauthenticated() { // the scheduled flush and a reader's never interleave
        Instant now = Instant.now();
        keyless.forEach((refusal, counter) -> {
            long count = counter.getAndSet(0);
            if (count == 0) {
                return;
            }
            log.info("{} requests to {} refused without a valid key ({}, HTTP {}) since the last report", count,
                    refusal.endpoint(), refusal.reason(), refusal.status());
            String id = "aggregate-" + refusal.endpoint() + "-" + refusal.status() + "-" + now.toEpochMilli();
            insert(new UsageRecord(id, null, refusal.endpoint(), null, null, false, 0, 0, "aggregated", refusal.reason(), refusal.status(),
                    null, 0, now, (int) Math.min(Integer.MAX_VALUE, count)));
        });
        writer.flush();
    }

    public List<UsageRepository.KeyTotals> totals(Instant from, Instant to, Long keyId) {
        writer.flush();
        return repository.totals(from, to, keyId);
    }

    /**
     * Tokens (prompt and completion) the key's requests used from the hour holding {@code from} on, rows not yet
     * written included; read from the rollups, so it stays fast and outlives the raw rows' retention.
     */
    public long tokensSince(long keyId, Instant from) {
        writer.flush();
        return rollups.tokensSince(keyId, from);
    }

    public List<UsageRecord> recent(int limit, Long keyId) {
        writer.flush();
        return repository.recent(limit, keyId);
    }
}
