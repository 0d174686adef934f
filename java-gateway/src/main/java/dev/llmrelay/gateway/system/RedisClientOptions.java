package dev.llmrelay.gateway.system;

import java.time.Duration;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;

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
}
