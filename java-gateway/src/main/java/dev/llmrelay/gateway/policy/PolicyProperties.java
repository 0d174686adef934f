package dev.llmrelay.gateway.policy;

import java.time.Duration;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Live policies ({@code gateway.policy.*}, env {@code GATEWAY_POLICY_*}).
 *
 * @param pollInterval how often each instance reads the policy version (a change is seen within about
 *                     this long on every instance; 0 turns polling off: changes apply only where made)
 * @param maxFilterEntries most words and patterns over all content-filter lists together
 */
@ConfigurationProperties("gateway.policy")
public record PolicyProperties(
        @DefaultValue("250ms") Duration pollInterval,
        @DefaultValue("200000") int maxFilterEntries) {
}
