package dev.llmrelay.gateway.conversation;

import java.time.Duration;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Settings of the browser API ({@code gateway.browser.*}, env {@code GATEWAY_BROWSER_*}).
 *
 * @param sessionTtl      life of a browser session cookie
 * @param replyRetention  how long a finished reply's events stay in memory for reconnects
 * @param maxTokens       completion budget asked for each browser reply
 * @param maxContentChars longest user message accepted
 * @param historyMessages most earlier messages of the conversation sent to the model with a new one
 * @param historyChars    most characters of earlier messages sent (keeps long chats inside the
 *                        model's context; the newest turns are kept)
 */
@ConfigurationProperties("gateway.browser")
public record BrowserProperties(
        @DefaultValue("7d") Duration sessionTtl,
        @DefaultValue("5m") Duration replyRetention,
        @DefaultValue("512") int maxTokens,
        @DefaultValue("32000") int maxContentChars,
        @DefaultValue("40") int historyMessages,
        @DefaultValue("12000") int historyChars) {
}
