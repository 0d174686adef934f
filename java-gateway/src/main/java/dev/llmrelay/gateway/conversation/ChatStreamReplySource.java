package dev.llmrelay.gateway.conversation;

import org.springframework.stereotype.Component;

import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.chat.ChatStreamError;
import dev.llmrelay.gateway.chat.ChatStreamHandle;
import dev.llmrelay.gateway.chat.ChatStreamListener;
import dev.llmrelay.gateway.chat.ChatStreamService;
import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.chat.ChatUsage;
import dev.llmrelay.gateway.keys.ApiKey;

/**
 * Browser replies go through the same {@link ChatStreamService} as {@code /v1}: limits, upstream
 * choice, failover, usage rows, cancellation. A failure reported before {@code start} returned
 * and before any text (no healthy upstream, every upstream refused) becomes a refusal the POST
 * answers with 503 + Retry-After, instead of an error event on a stream not yet opened.
 */
@Component
class ChatStreamReplySource implements ReplySource {

    private final ChatStreamService chatStreams;

    ChatStreamReplySource(ChatStreamService chatStreams) {
        this.chatStreams = chatStreams;
    }

    @Override
    public ReplyHandle start(ApiKey key, ObjectNode openAiRequest, String requestId, String conversationId,
            ReplyListener listener) {
        Relay relay = new Relay(listener);
        ChatStreamHandle handle = chatStreams.start(key, openAiRequest, requestId, "conversation:" + conversationId,
                relay);
        ChatStreamError early = relay.started();
        if (early != null) {
            throw ApiProblem.refused(early.status(), early.code(), early.message(), early.retryAfterSeconds());
        }
        String fallback = handle.rateLimitHeaders().get(Degradation.FALLBACK_HEADER);
        return new ReplyHandle() {
            @Override
            public void cancel() {
                handle.cancel();
            }

            @Override
            public String fallback() {
                return fallback;
            }
        };
    }

    /** Forwards the stream's callbacks, holding back an error that arrives while start() runs. */
    private static final class Relay implements ChatStreamListener {

        private final ReplyListener listener;
        private boolean starting = true;
        private ChatStreamError early;

        Relay(ReplyListener listener) {
            this.listener = listener;
        }

        synchronized ChatStreamError started() {
            starting = false;
            return early;
        }

        @Override
        public void onDelta(String text) {
            listener.onToken(text);
        }

        @Override
        public void onFinish(String finishReason, ChatUsage usage) {
            listener.onFinish(finishReason, usage == null ? null : java.util.Map.of(
                    "prompt_tokens", usage.promptTokens(),
                    "completion_tokens", usage.completionTokens(),
                    "total_tokens", usage.totalTokens()));
        }

        @Override
        public void onError(ChatStreamError error) {
            synchronized (this) {
                if (starting && !error.relayedAny()) {
                    early = error;
                    return;
                }
            }
            listener.onError(error.code(), error.message(), error.retryAfterSeconds());
        }
    }
}
