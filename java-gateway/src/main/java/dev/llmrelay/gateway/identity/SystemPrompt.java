package dev.llmrelay.gateway.identity;

import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;

/**
 * An operator's system prompt for a model ({@code scope = model}) or an API key ({@code scope = key}).
 *
 * @param mode {@code prepend}: before the client's own messages (its system message included);
 *             {@code replace}: instead of the client's system messages
 */
public record SystemPrompt(String scope, String target, String prompt, String mode, Instant updatedAt) {

    static final String PREPEND = "prepend";
    static final String REPLACE = "replace";

    /** The prompt with {@code {model}}, {@code {key_name}} and {@code {date}} (UTC, ISO) filled in. */
    public String render(String model, String keyName, Instant now) {
        return prompt.replace("{model}", model == null ? "" : model)
                .replace("{key_name}", keyName == null ? "" : keyName)
                .replace("{date}", LocalDate.ofInstant(now, ZoneOffset.UTC).toString());
    }

    public boolean replaces() {
        return REPLACE.equals(mode);
    }
}
