package dev.llmrelay.gateway.chat;

import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecord;
import dev.llmrelay.gateway.usage.UsageRecorder;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * The books of admitted streams: how many run now ({@code gateway.streams.active}), and the end of each,
 * which its stream reports exactly once: the key's reservation and budget hold settled with what was used, the pool's slot
 * and the key's stream given back, one usage row. A cut stream is billed for what was relayed.
 */
@Component
class StreamAccounting {

    private final UsageRecorder usage;
    private final AtomicInteger active = new AtomicInteger();

    StreamAccounting(UsageRecorder usage, MeterRegistry meters) {
        this.usage = usage;
        Gauge.builder("gateway.streams.active", active, AtomicInteger::get)
                .description("streams relayed right now").register(meters);
    }

    void opened() {
        active.incrementAndGet();
    }

    /** The end of a stream opened with {@link #opened}; returns what it was billed. */
    ChatUsage ended(GenerationRequest request, StreamOutput output, UpstreamLease lease, boolean relayedAny,
            long startNanos, EndReason reason, int status) {
        active.decrementAndGet();
        request.route.slot().release();
        output.recordFilter();
        ChatUsage billed = output.billed(relayedAny);
        request.permit.finish(billed.totalTokens());
        request.budget.settle(billed.totalTokens());
        long now = System.nanoTime();
        long firstToken = output.firstTokenNanos();
        Long ttft = firstToken == 0 ? null : TimeUnit.NANOSECONDS.toMillis(firstToken - startNanos);
        usage.record(new UsageRecord(request.requestId, request.key.id(), request.endpoint.usageName,
                lease == null ? null : lease.upstream().name(), output.model(), request.clientStreams,
                billed.promptTokens(), billed.completionTokens(), billed.reported() ? "reported" : "counted", reason,
                status, ttft, TimeUnit.NANOSECONDS.toMillis(now - startNanos), Instant.now()));
        return billed;
    }
}
