package dev.llmrelay.gateway.system;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.Delay;

/** How every Lettuce client of the gateway talks to Redis (the limit store, the shared reply streams). */
public final class RedisClientOptions {

    private RedisClientOptions() {
    }

    /**
     * Connects and commands bounded by {@code timeout} ({@code gateway.redis.timeout}); reconnects by
     * itself; while disconnected, commands fail at once instead of queueing until the timeout.
     */
    public static ClientOptions bounded(Duration timeout) {
        return ClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .socketOptions(SocketOptions.builder().connectTimeout(timeout).build())
                .timeoutOptions(TimeoutOptions.enabled(timeout))
                .build();
    }

    /**
     * Lettuce's resources with a reconnect backoff of 100 ms to 2 s: its default grows to 30 s, and limits
     * and replies should be shared again soon after Redis is back. Shut them down with the client.
     */
    public static ClientResources resources() {
        return ClientResources.builder()
                .reconnectDelay(Delay.exponential(Duration.ofMillis(100), Duration.ofSeconds(2), 2,
                        TimeUnit.MILLISECONDS))
                .build();
    }
}
