package dev.llmrelay.gateway.conversation;

import java.time.Instant;

/**
 * A stored conversation, owned by the API key that started it. {@code model}: the model its replies come
 * from, null when none was chosen (the default, {@link ChatModels#defaultModel}).
 */
record Conversation(String id, long keyId, String title, String model, Instant createdAt, Instant updatedAt) {
}
