package dev.llmrelay.gateway.conversation;

import java.time.Instant;

/** A stored conversation, owned by the API key that started it. */
record Conversation(String id, long keyId, String title, Instant createdAt, Instant updatedAt) {
}
