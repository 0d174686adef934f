package dev.llmrelay.gateway.chat;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;

/**
 * Schedules {@code : ping} comments for open streams. The servlet container only notices a client that
 * left when a write fails, so during a long prefill these writes are what finds dead clients.
 */
@Component
class SseHeartbeats implements DisposableBean {

    private final ScheduledExecutorService scheduler;
    private final Duration interval;

    SseHeartbeats(GatewayProperties properties) {
        this.interval = properties.timeouts().heartbeat();
        AtomicInteger n = new AtomicInteger();
        this.scheduler = Executors.newScheduledThreadPool(2, r -> {
            Thread thread = new Thread(r, "sse-heartbeat-" + n.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        });
    }

    /** Runs {@code ping} every interval until the returned future is cancelled. */
    ScheduledFuture<?> every(Runnable ping) {
        long millis = Math.max(100, interval.toMillis());
        return scheduler.scheduleWithFixedDelay(ping, millis, millis, TimeUnit.MILLISECONDS);
    }

    @Override
    public void destroy() {
        scheduler.shutdownNow();
    }
}
