package dev.llmrelay.gateway.conversation;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import jakarta.annotation.PreDestroy;

import org.springframework.context.SmartLifecycle;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;

/**
 * The replies this gateway is generating or has just finished, by message id. A finished
 * reply's events stay here for {@code gateway.browser.reply-retention} so a browser that lost
 * the connection right before the end still gets the rest; after that its stream answers 204.
 * Also sends the heartbeat comments of every open browser stream.
 */
@Component
class ReplyRegistry implements SmartLifecycle {

    private final Map<String, ReplyGeneration> replies = new ConcurrentHashMap<>();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "browser-replies");
        thread.setDaemon(true);
        return thread;
    });
    private final Duration retention;
    private volatile boolean running;

    ReplyRegistry(BrowserProperties browser, GatewayProperties gateway) {
        this.retention = browser.replyRetention();
        long heartbeatMs = Math.max(1000, gateway.timeouts().heartbeat().toMillis());
        timer.scheduleWithFixedDelay(this::ping, heartbeatMs, heartbeatMs, TimeUnit.MILLISECONDS);
    }

    void add(ReplyGeneration generation) {
        replies.put(generation.messageId(), generation);
    }

    Optional<ReplyGeneration> find(String messageId) {
        return Optional.ofNullable(replies.get(messageId));
    }

    /** Ids of the replies this gateway is generating now (not yet ended). */
    List<String> generating() {
        return replies.values().stream().filter(g -> !g.isComplete()).map(ReplyGeneration::messageId).toList();
    }

    void remove(String messageId) {
        replies.remove(messageId);
    }

    /** Called once a reply has ended: forget its events after the retention time. */
    void retire(ReplyGeneration generation) {
        try {
            timer.schedule(() -> replies.remove(generation.messageId(), generation),
                    retention.toMillis(), TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException shuttingDown) {
            replies.remove(generation.messageId(), generation);
        }
    }

    private void ping() {
        for (ReplyGeneration generation : replies.values()) {
            generation.ping();
        }
    }

    // ---- shutdown: before the web server's graceful shutdown waits for open requests ----

    @Override
    public void start() {
        running = true;
    }

    /**
     * Stops the model for every reply still running (each is stored as stopped and its readers get
     * the finish event) and ends every open reply stream, so a graceful shutdown does not wait for
     * event streams that would otherwise stay open for up to the stream timeout.
     */
    @Override
    public void stop() {
        running = false;
        for (ReplyGeneration generation : replies.values()) {
            if (!generation.isComplete()) {
                generation.cancel();
            }
            generation.endSubscribers();
        }
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    /** Stops before the web server's graceful shutdown (phase DEFAULT_PHASE - 1024). */
    @Override
    public int getPhase() {
        return SmartLifecycle.DEFAULT_PHASE;
    }

    @PreDestroy
    void stopTimer() {
        timer.shutdownNow();
    }
}
