package dev.llmrelay.gateway.chat;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.slf4j.MDC;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecord;
import dev.llmrelay.gateway.usage.UsageRecorder;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

/**
 * The books of admitted streams: how many run now ({@code gateway.streams.active}), and the end of each,
 * which its stream reports exactly once: the key's reservation and budget hold settled with what was used, the pool's slot
 * and the key's stream given back, one usage row. A cut stream is billed for what was relayed.
 */
@Component
class StreamAccounting {

    private final UsageRecorder usage;
    private final AtomicInteger active = new AtomicInteger();
    private final Timer relayLatency;
    private final Timer addedTtft;

    StreamAccounting(UsageRecorder usage, MeterRegistry meters) {
        this.usage = usage;
        this.relayLatency = Timer.builder("gateway.relay.latency")
                .description("an upstream chunk received to its write to the client done (parse, filter, write)")
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofNanos(10_000))
                .maximumExpectedValue(Duration.ofSeconds(1)).register(meters);
        this.addedTtft = Timer.builder("gateway.ttft.added")
                .description("the time to first token the gateway adds: from the request's arrival to its first text "
                        + "written to the client, less the serving upstream's own (its request sent to that text received)")
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofNanos(10_000))
                .maximumExpectedValue(Duration.ofSeconds(30)).register(meters);
        Gauge.builder("gateway.streams.active", active, AtomicInteger::get)
                .description("streams relayed right now").register(meters);
    }

    void opened() {
        active.incrementAndGet();
    }

    /** One chunk relayed: received from the upstream to written to the client, in nanoseconds. */
    void relayed(long nanos) {
        relayLatency.record(nanos, TimeUnit.NANOSECONDS);
    }

    /**
     * The end of a stream opened with {@link #opened}; returns what it was billed. {@code servingSentNanos}: when
     * the attempt that served sent its request; {@code firstWrittenNanos}: when its first text reached the client
     * (0 when none did).
     */
    ChatUsage ended(GenerationRequest request, StreamOutput output, UpstreamLease lease, boolean relayedAny,
            long startNanos, EndReason reason, int status, long servingSentNanos, long firstWrittenNanos) {
        active.decrementAndGet();
        request.route.slot().release();
        request.trace.outputHits(output.recordFilter());
        ChatUsage billed = output.billed(relayedAny);
        request.permit.finish(billed.totalTokens());
        request.budget.settle(billed.totalTokens());
        long now = System.nanoTime();
        long firstToken = output.firstTokenNanos();
        if (firstToken != 0 && firstWrittenNanos != 0 && servingSentNanos != 0) {
            long upstreamTtft = firstToken - servingSentNanos;
            addedTtft.record(Math.max(0, firstWrittenNanos - request.arrivedNanos - upstreamTtft), TimeUnit.NANOSECONDS);
        }
        Long ttft = firstToken == 0 ? null : TimeUnit.NANOSECONDS.toMillis(firstToken - startNanos);
        String traceId = request.trace.traceId(); // this thread is an OkHttp one: the request's log line names it
        try (MDC.MDCCloseable ignored = traceId != null ? MDC.putCloseable("trace_id", traceId) : null) {
            usage.record(new UsageRecord(request.requestId, request.key.id(), request.endpoint.usageName,
                    lease == null ? null : lease.upstream().name(), output.model(), request.clientStreams,
                    billed.promptTokens(), billed.completionTokens(), billed.reported() ? "reported" : "counted",
                    reason, status, ttft, TimeUnit.NANOSECONDS.toMillis(now - startNanos), Instant.now()));
        }
        return billed;
    }
}
