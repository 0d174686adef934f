package dev.llmrelay.gateway.usage;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Service;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

/** Writes usage rows and the request metrics that go with them. */
@Service
public class UsageRecorder {

    private static final Logger log = LoggerFactory.getLogger(UsageRecorder.class);

    private final UsageRepository repository;
    private final MeterRegistry meters;

    UsageRecorder(UsageRepository repository, MeterRegistry meters) {
        this.repository = repository;
        this.meters = meters;
    }

    public void record(UsageRecord record) {
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
        log.info("request {} key={} upstream={} model={} end={} status={} prompt={} completion={} ({}) ttft_ms={} "
                        + "duration_ms={}", record.requestId(), record.keyId(), record.upstream(), record.model(),
                record.endReason(), record.httpStatus(), record.promptTokens(), record.completionTokens(),
                record.usageSource(), record.ttftMs(), record.durationMs());
        try {
            repository.insert(record);
        } catch (RuntimeException e) {
            // accounting must not break a relay that already happened; the log line above keeps the facts
            log.error("could not store usage row for request {}", record.requestId(), e);
        }
    }

    /** A request refused before it reached an upstream (401, 429, 400). */
    public void recordRefused(String requestId, Long keyId, String endpoint, String model, boolean streamed,
            EndReason reason, int status) {
        record(new UsageRecord(requestId, keyId, endpoint, null, model, streamed, 0, 0, "counted", reason, status,
                null, 0, Instant.now()));
    }

    public List<UsageRepository.KeyTotals> totals(Instant from, Instant to, Long keyId) {
        return repository.totals(from, to, keyId);
    }

    public List<UsageRecord> recent(int limit, Long keyId) {
        return repository.recent(limit, keyId);
    }
}
