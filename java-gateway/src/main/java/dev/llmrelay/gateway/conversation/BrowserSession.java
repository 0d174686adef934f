package dev.llmrelay.gateway.conversation;

import dev.llmrelay.gateway.keys.ApiKey;

/**
 * The signed-in browser behind a request: which session (by token hash, never the token)
 * and which API key it acts for. Controllers receive it as a parameter; a request without a
 * valid session gets 401 before the controller runs.
 */
record BrowserSession(String tokenHash, ApiKey key) {
}
